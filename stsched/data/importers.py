"""Importers: published profile files, in their ORIGINAL formats, into the long schema of `schema.py`.

Every importer reads the source's own file layout, converts units (seconds -> ms, % -> fraction), skips the rows
that the source's documented convention marks as failed/out-of-memory (with a logged count), validates the result
and returns an `ImportResult`.  Anything else malformed raises `InputError` naming the file and data row.

`IMPORTERS` maps a source name to its importer; `run_import` is what `stsched import SOURCE PATH... --out DIR`
calls.  Readers of the sources' scenario files (ParvaGPU SLO scenarios and deployments, gpulet SLOs and rate
mixes) are at the end of this module.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stsched.data.schema import CORUN_COLUMNS, SOLO_COLUMNS, to_float, validate_corun, validate_solo
from stsched.errors import InputError

log = logging.getLogger(__name__)

#: gpulet names its SSD model `ssd` in the RTX 3080 table and `ssd-mobilenetv1` everywhere else.
GLET_MODEL_ALIASES: dict[str, str] = {"ssd": "ssd-mobilenetv1"}
#: ParvaGPU's `bert` is BERT-large (its scripts/dl_infer_runtime.py loads bert/large.json), not the BERT-base
#: that gpulet calls `bert`; it is renamed so that one name means one network (and one weight size).
PARVAGPU_MODEL_ALIASES: dict[str, str] = {"bert": "bert-large"}


@dataclass(frozen=True, eq=False)
class ImportResult:
    """What an importer returns: schema-valid tables (None where the source has none) and rows skipped."""

    solo: pd.DataFrame | None
    corun: pd.DataFrame | None
    skipped: int = 0


# --------------------------------------------------------------------------------------------------- file reading
def _open_rows(path: str | os.PathLike[str]) -> list[tuple[int, list[str]]]:
    """All non-blank CSV rows of a file as (0-based line index, fields)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", source=str(path))
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = [(i, [f.strip() for f in row]) for i, row in enumerate(csv.reader(fh))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read as CSV: {exc}", source=str(path)) from exc
    return [(i, fields) for i, fields in rows if any(fields)]


def read_headerless(path: str | os.PathLike[str], names: Sequence[str],
                    markers: dict[int, str] | None = None) -> pd.DataFrame:
    """A headerless CSV as strings with columns `names`; index = 0-based data row (= line) number.

    A row with a different number of fields, or without the literal marker words some layouts carry
    (`markers`: column position -> expected text), is an error naming the file and row.
    """
    rows, index = [], []
    for i, fields in _open_rows(path):
        if len(fields) != len(names):
            raise InputError(f"data row {i + 1}: expected {len(names)} columns, found {len(fields)}", source=str(path))
        for pos, word in (markers or {}).items():
            if fields[pos].lower() != word:
                raise InputError(f"data row {i + 1}: column {pos + 1} should read '{word}', found '{fields[pos]}'",
                                 source=str(path))
        rows.append(fields)
        index.append(i)
    if not rows:
        raise InputError("no data rows", source=str(path))
    return pd.DataFrame(rows, columns=list(names), index=index)


def read_headed(path: str | os.PathLike[str], required: Sequence[str], *, trailing_comma: bool = False) -> pd.DataFrame:
    """A CSV with a header row, as strings; index = 0-based data row number (header not counted).

    `trailing_comma` admits one extra empty field at the end of each data row (gpulet's UTIL.CSV).
    """
    allrows = _open_rows(path)
    if not allrows:
        raise InputError("empty file", source=str(path))
    (_, header), body = allrows[0], allrows[1:]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:  # a column named twice is a DataFrame, not a Series, to whatever reads it
        raise InputError(f"column(s) {', '.join(twice)} named twice in the header ({', '.join(header)})",
                         source=str(path))
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} (found: {', '.join(header)})", source=str(path))
    rows, index = [], []
    for n, (_, fields) in enumerate(body):
        if trailing_comma and len(fields) == len(header) + 1 and fields[-1] == "":
            fields = fields[:-1]
        if len(fields) != len(header):
            raise InputError(f"data row {n + 1}: expected {len(header)} columns, found {len(fields)}", source=str(path))
        rows.append(fields)
        index.append(n)
    if not rows:
        raise InputError("no data rows", source=str(path))
    return pd.DataFrame(rows, columns=header, index=index)


def _num(df: pd.DataFrame, col: str, source: str) -> pd.Series:
    """Column as float; an empty cell is NaN, anything else non-numeric is an error naming the rows."""
    num, bad = to_float(df[col])
    if bad.any():
        rows = ", ".join(str(i + 1) for i in df.index[bad][:5])
        raise InputError(f"column '{col}' is not numeric in data rows {rows}", source=source)
    return num


def _ms(seconds: pd.Series) -> pd.Series:
    """Seconds -> milliseconds, rounded to 1e-9 ms so the CSV stays tidy."""
    return (seconds * 1000.0).round(9)


def _frac(percent: pd.Series) -> pd.Series:
    """Percent -> fraction, rounded to 1e-12."""
    return (percent / 100.0).round(12)


def _skip(mask: pd.Series, df: pd.DataFrame, what: str, source: str, describe: Callable[[pd.Series], str]) -> int:
    """Log (warning) and count rows skipped under a source's documented OOM/failure convention."""
    n = int(mask.sum())
    if n:
        examples = "; ".join(f"data row {i + 1} ({describe(df.loc[i])})" for i in df.index[mask][:3])
        log.warning("%s: skipped %d row(s) marked %s, e.g. %s", source, n, what, examples)
    return n


# ------------------------------------------------------------------------------------------- gpulet 0909wlgur A100
_INFER = ["model", "batch", "partition", "_t", "throughput", "_l", "latency_s", "valid_flag"]
_MEMU = ["model", "batch", "partition", "_m", "dram_pct", "_l2", "l2_pct", "flag"]
_INTERF = ["victim", "victim_batch", "victim_partition", "corunner", "corunner_batch", "_t", "victim_throughput",
           "_l", "victim_latency_s", "valid_flag"]


def _flag(df: pd.DataFrame, col: str, source: str) -> pd.Series:
    f = _num(df, col, source)
    bad = ~f.isin([0.0, 1.0])
    if bad.any():
        rows = ", ".join(str(i + 1) for i in df.index[bad][:5])
        raise InputError(f"column '{col}' must be 0 or 1 in data rows {rows}", source=source)
    return f


def import_gpulet_a100(inference_csv: str | os.PathLike[str], mem_util_csv: str | os.PathLike[str] | None = None,
                       interference_csv: str | os.PathLike[str] | None = None, *,
                       device: str = "a100-40gb") -> ImportResult:
    """The 0909wlgur/Gpulet A100 MPS tables (headerless CSVs) -> solo (+ corun).

    inference.csv: latency s/batch -> ms, throughput samples/s; valid_flag 0 rows skipped (logged).
    mem_util.csv: DRAM and L2 % of peak -> fractions, joined on (model, batch, partition); its flag column is
    ignored (inconsistent in the source), a zero value is read as "not measured".
    interference.csv: victim latency s -> ms; co-runner partition = 100 - victim partition; flag 0 skipped.
    """
    src = str(inference_csv)
    raw = read_headerless(inference_csv, _INFER, {3: "throughput", 5: "latency"})
    flag = _flag(raw, "valid_flag", src)
    skipped = _skip(flag == 0, raw, "valid_flag 0 (failed/OOM)", src,
                    lambda r: f"{r['model']} b{r['batch']} p{r['partition']}")
    raw = raw[flag == 1]
    solo = pd.DataFrame({
        "device": device, "mechanism": "mps", "model": raw["model"].str.lower(),
        "batch": _num(raw, "batch", src), "partition": _num(raw, "partition", src), "procs": 1,
        "latency_ms": _ms(_num(raw, "latency_s", src)), "throughput_rps": _num(raw, "throughput", src),
        "l2_util": np.nan, "dram_util": np.nan,
    }, index=raw.index)
    solo = validate_solo(solo, src).set_axis(raw.index)

    if mem_util_csv is not None:
        msrc = str(mem_util_csv)
        mraw = read_headerless(mem_util_csv, _MEMU, {3: "mem_util", 5: "l2_util"})
        mem = pd.DataFrame({
            "model": mraw["model"].str.lower(), "batch": _num(mraw, "batch", msrc),
            "partition": _num(mraw, "partition", msrc),
            "dram_util": _frac(_num(mraw, "dram_pct", msrc).replace(0.0, np.nan)),
            "l2_util": _frac(_num(mraw, "l2_pct", msrc).replace(0.0, np.nan)),
        }, index=mraw.index)
        out_of_range = ((mem[["dram_util", "l2_util"]] < 0) | (mem[["dram_util", "l2_util"]] > 1)).any(axis=1)
        if out_of_range.any():
            raise InputError(f"utilisation outside 0..100 % in data rows "
                             f"{', '.join(str(i + 1) for i in mem.index[out_of_range][:5])}", source=msrc)
        dup = mem.duplicated(["model", "batch", "partition"])
        if dup.any():
            raise InputError(f"repeated (model, batch, partition) in data rows "
                             f"{', '.join(str(i + 1) for i in mem.index[dup][:5])}", source=msrc)
        keyed = mem.set_index(["model", "batch", "partition"])
        keys = pd.MultiIndex.from_frame(solo[["model", "batch", "partition"]].astype({"batch": float}))
        solo["l2_util"] = keyed["l2_util"].reindex(keys).to_numpy()
        solo["dram_util"] = keyed["dram_util"].reindex(keys).to_numpy()
        unused = ~pd.MultiIndex.from_frame(mem[["model", "batch", "partition"]]).isin(keys)
        if unused.any():
            log.info("%s: %d utilisation row(s) have no solo latency row (models: %s)", msrc, int(unused.sum()),
                     ", ".join(sorted(mem.loc[unused, "model"].unique())))
        solo = validate_solo(solo, src)

    corun = None
    if interference_csv is not None:
        isrc = str(interference_csv)
        iraw = read_headerless(interference_csv, _INTERF, {5: "throughput", 7: "latency"})
        iflag = _flag(iraw, "valid_flag", isrc)
        skipped += _skip(iflag == 0, iraw, "valid_flag 0 (failed/OOM)", isrc,
                         lambda r: f"{r['victim']} b{r['victim_batch']} with {r['corunner']} b{r['corunner_batch']}")
        iraw = iraw[iflag == 1]
        vpart = _num(iraw, "victim_partition", isrc)
        corun = validate_corun(pd.DataFrame({
            "device": device, "mechanism": "mps", "victim": iraw["victim"].str.lower(),
            "victim_batch": _num(iraw, "victim_batch", isrc), "victim_partition": vpart,
            "corunner": iraw["corunner"].str.lower(), "corunner_batch": _num(iraw, "corunner_batch", isrc),
            "corunner_partition": 100.0 - vpart, "victim_latency_ms": _ms(_num(iraw, "victim_latency_s", isrc)),
            "corunner_latency_ms": np.nan,
        }, index=iraw.index), isrc)
    return ImportResult(solo.reset_index(drop=True), corun, skipped)


# -------------------------------------------------------------------------------------------- gpulet (glet) UTIL
_GLET_UTIL = ["bench", "batch", "l2_util(%)", "mem_util(%)"]


def import_glet_util(util_csv: str | os.PathLike[str], device: str) -> ImportResult:
    """gpulet's own `resource/<gpu>/UTIL.CSV` (solo Nsight utilisation per model and batch) -> solo.

    Only `l2_util(%)` and `mem_util(%)` (DRAM) are usable; gpulet's scheduler reads nothing else.  The
    `avg_duration(ms)` column was taken under the profiler and is not a serving latency (its unit even differs
    between the two GPUs), so `latency_ms` and `throughput_rps` are left empty.  Rows are whole-GPU profiles:
    mechanism `mps`, partition 100, procs 1.  Model `ssd` is renamed per `GLET_MODEL_ALIASES`.
    """
    src = str(util_csv)
    raw = read_headed(util_csv, _GLET_UTIL, trailing_comma=True)
    model = raw["bench"].str.lower().replace(GLET_MODEL_ALIASES)
    solo = pd.DataFrame({
        "device": device.lower(), "mechanism": "mps", "model": model, "batch": _num(raw, "batch", src),
        "partition": 100.0, "procs": 1, "latency_ms": np.nan, "throughput_rps": np.nan,
        "l2_util": _frac(_num(raw, "l2_util(%)", src)), "dram_util": _frac(_num(raw, "mem_util(%)", src)),
    }, index=raw.index)
    return ImportResult(validate_solo(solo, src, require_latency=False), None, 0)


# ------------------------------------------------------------------------------------------------- iGniter V100
_IGN_SOLO = ["model", "batch", "mps_pct", "latency_ms", "throughput_samples_per_s", "l2_sectors_pct_peak",
             "dram_throughput_pct_peak"]
_IGN_PAIRS = ["model1", "model2", "batch1", "batch2", "mps_pct1", "mps_pct2", "latency1_ms", "latency2_ms"]


def _is_json_lines(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", source=str(path))
    try:
        with p.open(encoding="utf-8-sig") as fh:
            head = fh.read(256).lstrip()
    except (OSError, UnicodeDecodeError) as exc:  # a binary file was a UnicodeDecodeError traceback
        raise InputError(f"cannot read: {exc}", source=str(path)) from None
    return head.startswith("{")


def _read_json_lines(path: str | os.PathLike[str]) -> dict:
    """iGniter's JSON-lines config: one object per line, keys merged recursively across lines."""
    merged: dict = {}

    def merge(into: dict, new: dict) -> None:
        for k, v in new.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into[k] = v

    try:
        with Path(path).open(encoding="utf-8-sig") as fh:
            lines = fh.readlines()
    except (OSError, UnicodeDecodeError) as exc:  # text after a '{' that is not UTF-8 was a traceback
        raise InputError(f"cannot read: {exc}", source=str(path)) from None
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {n + 1}: not JSON ({exc.msg})", source=str(path)) from exc
        if not isinstance(obj, dict):
            raise InputError(f"line {n + 1}: expected a JSON object", source=str(path))
        merge(merged, obj)
    return merged


def _igniter_solo_from_json(cfg: dict, src: str) -> pd.DataFrame:
    rows = []
    for model, metrics in cfg.items():
        if model in ("interference", "hardware") or not isinstance(metrics, dict) or "latency" not in metrics:
            continue
        for b, by_pct in metrics["latency"].items():
            for pct, lat in by_pct.items():
                def get(metric: str) -> object:
                    return metrics.get(metric, {}).get(b, {}).get(pct, "")
                rows.append([model, b, pct, lat, get("throughput"), get("l2cache"), get("dram")])
    if not rows:
        raise InputError("no '<model>.latency' entries found", source=src)
    df = pd.DataFrame(rows, columns=_IGN_SOLO).astype(str).replace({"nan": ""})
    order = pd.DataFrame({"m": pd.Categorical(df["model"], categories=list(dict.fromkeys(df["model"]))),
                          "b": pd.to_numeric(df["batch"], errors="coerce"),
                          "p": pd.to_numeric(df["mps_pct"], errors="coerce")})
    return df.loc[order.sort_values(["m", "b", "p"], kind="stable").index].reset_index(drop=True)


def _igniter_pairs_from_json(cfg: dict, src: str) -> pd.DataFrame | None:
    items = cfg.get("interference", {}).get("latency") if isinstance(cfg.get("interference"), dict) else None
    if items is None:
        return None
    rows = []
    for n, it in enumerate(items):
        if not isinstance(it, list) or len(it) != 7:
            raise InputError(f"interference.latency item {n + 1}: expected 7 values "
                             "[model1, model2, batch1, batch2, mps_pct1, lat1_ms, lat2_ms]", source=src)
        m1, m2, b1, b2, p1, l1, l2 = it
        try:
            p2 = 100.0 - float(p1)
        except (TypeError, ValueError):
            raise InputError(f"interference.latency item {n + 1}: mps_pct1 is not numeric", source=src) from None
        rows.append([m1, m2, b1, b2, p1, p2, l1, l2])
    return pd.DataFrame(rows, columns=_IGN_PAIRS).astype(str)


def import_igniter(solo_csv: str | os.PathLike[str], pairs_csv: str | os.PathLike[str] | None = None, *,
                   device: str = "v100-16gb") -> ImportResult:
    """iGniter's V100 MPS profile -> solo (+ corun).

    Accepts the derived CSV layouts (`gpulet_config_solo.csv`, `gpulet_config_pairs.csv`, with headers) or the
    raw JSON-lines `gpulet.config` / `gpulet2.config` (latency/throughput/l2cache/dram per model[batch][pct]
    and `interference.latency` pairs).  If `solo_csv` is JSON with pairs and `pairs_csv` is None, its pairs are
    used.  Each pair gives two co-run rows: model1 as victim, then model2 as victim.  Latencies are already ms;
    L2/DRAM % -> fractions.
    """
    src = str(solo_csv)
    pairs_raw: pd.DataFrame | None = None
    if _is_json_lines(solo_csv):
        cfg = _read_json_lines(solo_csv)
        raw = _igniter_solo_from_json(cfg, src)
        if pairs_csv is None:
            pairs_raw = _igniter_pairs_from_json(cfg, src)
    else:
        raw = read_headed(solo_csv, _IGN_SOLO)
    solo = validate_solo(pd.DataFrame({
        "device": device, "mechanism": "mps", "model": raw["model"].str.lower(), "batch": _num(raw, "batch", src),
        "partition": _num(raw, "mps_pct", src), "procs": 1, "latency_ms": _num(raw, "latency_ms", src),
        "throughput_rps": _num(raw, "throughput_samples_per_s", src),
        "l2_util": _frac(_num(raw, "l2_sectors_pct_peak", src)),
        "dram_util": _frac(_num(raw, "dram_throughput_pct_peak", src)),
    }, index=raw.index), src)

    psrc = str(pairs_csv) if pairs_csv is not None else src
    if pairs_csv is not None:
        if _is_json_lines(pairs_csv):
            pairs_raw = _igniter_pairs_from_json(_read_json_lines(pairs_csv), psrc)
            if pairs_raw is None:
                raise InputError("no 'interference.latency' entries found", source=psrc)
        else:
            pairs_raw = read_headed(pairs_csv, _IGN_PAIRS)
    corun = None
    if pairs_raw is not None:
        p = pairs_raw
        a = {"m": p["model1"].str.lower(), "b": _num(p, "batch1", psrc), "p": _num(p, "mps_pct1", psrc),
             "l": _num(p, "latency1_ms", psrc)}
        z = {"m": p["model2"].str.lower(), "b": _num(p, "batch2", psrc), "p": _num(p, "mps_pct2", psrc),
             "l": _num(p, "latency2_ms", psrc)}
        halves = []
        for k, (v, c) in enumerate(((a, z), (z, a))):
            halves.append(pd.DataFrame({
                "device": device, "mechanism": "mps", "victim": v["m"], "victim_batch": v["b"],
                "victim_partition": v["p"], "corunner": c["m"], "corunner_batch": c["b"],
                "corunner_partition": c["p"], "victim_latency_ms": v["l"], "corunner_latency_ms": c["l"],
                "_order": np.arange(len(p)) * 2 + k,
            }, index=p.index))
        both = pd.concat(halves).sort_values("_order", kind="stable").drop(columns="_order")
        corun = validate_corun(both, psrc)
    return ImportResult(solo, corun, 0)


# ------------------------------------------------------------------------------------------------ ParvaGPU A100
_PARVA = ["Mig instance", "Batch size", "Workload Number", "Throughput", "Latency"]


def _parva_files(prof: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    items = [prof] if isinstance(prof, (str, os.PathLike)) else list(prof)
    files: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            found = sorted(p.glob("*.csv"))
            if not found:
                raise InputError("no *.csv files in folder", source=str(p))
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError("file or folder not found", source=str(p))
    return files


def import_parvagpu(prof_dir_or_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                    device: str = "a100-80gb") -> ImportResult:
    """ParvaGPU's `prof_data/<model>.csv` (A100-80GB, MIG slice x batch x MPS processes) -> solo.

    Model = file name stem.  `Latency` seconds per batch -> ms; `Throughput` is PER PROCESS (req/s) and is kept
    as measured (ParvaGPU multiplies it by the process count for the instance aggregate).  Rows `0,0` (not
    measured / OOM) are skipped with a logged count.  Process counts 1..5 are kept as measured.  `bert` is
    renamed `bert-large` (`PARVAGPU_MODEL_ALIASES`).
    """
    parts, skipped = [], 0
    for f in _parva_files(prof_dir_or_files):
        src = str(f)
        raw = read_headed(f, _PARVA)
        tput, lat = _num(raw, "Throughput", src), _num(raw, "Latency", src)
        oom = (tput == 0) & (lat == 0)
        skipped += _skip(oom, raw, "0,0 (not measured / OOM)", src,
                         lambda r: f"{r['Mig instance']}g b{r['Batch size']} x{r['Workload Number']}")
        keep = ~oom
        parts.append(validate_solo(pd.DataFrame({
            "device": device, "mechanism": "mig",
            "model": PARVAGPU_MODEL_ALIASES.get(f.stem.lower(), f.stem.lower()),
            "batch": _num(raw, "Batch size", src)[keep], "partition": _num(raw, "Mig instance", src)[keep],
            "procs": _num(raw, "Workload Number", src)[keep], "latency_ms": _ms(lat[keep]),
            "throughput_rps": tput[keep], "l2_util": np.nan, "dram_util": np.nan,
        }, index=raw.index[keep]), src))
    # Validate the union too: the same model in two files would repeat keys.
    whole = str(prof_dir_or_files) if isinstance(prof_dir_or_files, (str, os.PathLike)) else "ParvaGPU profiles"
    solo = validate_solo(pd.concat(parts, ignore_index=True), whole)
    return ImportResult(solo, None, skipped)


# ---------------------------------------------------------------------------------------------- registry + CLI
@dataclass(frozen=True)
class Importer:
    """One importable source: how many paths it takes (in order), what they are, and the function."""

    name: str
    description: str
    files: tuple[str, ...]
    min_paths: int
    run: Callable[[list[str]], ImportResult] = field(repr=False)
    dataset: str | None = None

    @property
    def max_paths(self) -> int | None:
        """Most paths accepted (None = any number)."""
        return None if self.files and self.files[-1].endswith("...") else len(self.files)


def _by_name(paths: list[str], names: Sequence[str]) -> list[str | None]:
    """Order gpulet's three tables by file name when all are recognised, else keep the given order."""
    base = [Path(p).name.lower() for p in paths]
    if all(b in names for b in base):
        return [paths[base.index(n)] if n in base else None for n in names]
    return list(paths) + [None] * (len(names) - len(paths))


IMPORTERS: dict[str, Importer] = {
    "gpulet-a100": Importer(
        "gpulet-a100", "0909wlgur/Gpulet A100 MPS tables (headerless CSV): solo from inference.csv with L2/DRAM "
        "joined from mem_util.csv, corun from interference.csv",
        ("inference.csv", "mem_util.csv (optional)", "interference.csv (optional)"), 1,
        lambda p: import_gpulet_a100(*_by_name(p, ["inference.csv", "mem_util.csv", "interference.csv"])),
        "a100-mps"),
    "glet-2080ti": Importer(
        "glet-2080ti", "casys-kaist/glet resource/2080ti/UTIL.CSV: solo L2/DRAM utilisation only (no latency)",
        ("UTIL.CSV",), 1, lambda p: import_glet_util(p[0], "rtx2080ti"), "glet-2080ti"),
    "glet-3080": Importer(
        "glet-3080", "casys-kaist/glet resource/3080/UTIL.CSV: solo L2/DRAM utilisation only (no latency)",
        ("UTIL.CSV",), 1, lambda p: import_glet_util(p[0], "rtx3080"), "glet-3080"),
    "igniter": Importer(
        "igniter", "iGniter V100 MPS profile: gpulet_config_solo.csv [+ gpulet_config_pairs.csv], or the raw "
        "JSON-lines gpulet.config / gpulet2.config",
        ("solo CSV or JSON-lines config", "pairs CSV or JSON-lines config (optional)"), 1,
        lambda p: import_igniter(*p), "v100-mps"),
    "parvagpu": Importer(
        "parvagpu", "ParvaGPU A100-80GB MIG x MPS profiles: prof_data/ folder or <model>.csv files",
        ("prof_data folder or <model>.csv ...",), 1, lambda p: import_parvagpu(p), "a100-mig"),
    "stsched-profiler": Importer(
        "stsched-profiler", "this project's profiler output (stsched profile --out DIR; scripts/gpu_check.sh's "
        "sm_/gpu_ copies): solo.csv [+ corun.csv] in the long schema, validated and sorted",
        ("solo.csv", "corun.csv (optional)"), 1, lambda p: _import_profiler(p), "h200-sm"),
}


def _import_profiler(paths: list[str]) -> ImportResult:
    from stsched.data.profiler_import import import_profiler  # imported here: it builds on this module

    files: list[str] = []
    for p in paths:  # a profile folder (`stsched profile --out DIR`) stands for its solo.csv and corun.csv
        if Path(p).is_dir():
            found = [str(Path(p) / n) for n in ("solo.csv", "corun.csv") if (Path(p) / n).is_file()]
            if not found:
                raise InputError("a folder without solo.csv or corun.csv (not a profiler output folder)", source=p)
            files += found
        else:
            files.append(p)
    return import_profiler(files)


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a table as CSV atomically (`stsched.io.write_atomic`)."""
    from stsched.io import write_atomic

    write_atomic(path, df.to_csv(index=False, lineterminator="\n"))


IMPORT_MARKER = "import.json"  # what an import wrote into its folder: source, paths, files


def _previous_import(out: Path) -> dict | None:
    """What a folder holds already: None when it has no table, else the marker (or {} without one)."""
    tables = [n for n in ("solo.csv", "corun.csv") if (out / n).exists()]
    if not tables:
        return None
    try:
        marker = json.loads((out / IMPORT_MARKER).read_text())
        return marker if isinstance(marker, dict) else {}
    except (OSError, ValueError):
        return {"files": tables}


def run_import(source: str, paths: list[str], out_dir: str, fresh: bool = False) -> dict:
    """Import `paths` with the importer `source` and write `solo.csv` / `corun.csv` into `out_dir`.

    Imports never mix: a folder that holds the tables of another import (another source or other files) is
    refused unless `fresh`, which removes them first; the same import again replaces its own tables.

    Returns a summary dict: source, out_dir, solo_rows, corun_rows, skipped_rows, models, written (paths).
    """
    if source not in IMPORTERS:
        raise InputError(f"unknown import source '{source}' (known: {', '.join(sorted(IMPORTERS))})")
    imp = IMPORTERS[source]
    paths = [str(p) for p in paths]
    if len(paths) < imp.min_paths or (imp.max_paths is not None and len(paths) > imp.max_paths):
        raise InputError(f"source '{source}' takes {', '.join(imp.files)}; got {len(paths)} path(s)")
    out = Path(out_dir)
    me = {"source": source, "paths": [os.path.realpath(p) for p in paths]}
    before = _previous_import(out)
    if before is not None and not fresh and {k: before.get(k) for k in me} != me:
        what = (f"an import of {before['source']} ({', '.join(before.get('paths') or [])})" if before.get("source")
                else f"tables not written by an import ({', '.join(before.get('files', []))})")
        raise InputError(f"{out} already holds {what}; give another folder, or --fresh to replace it")
    res = imp.run(paths)
    if before is not None:
        for name in ("solo.csv", "corun.csv", IMPORT_MARKER):
            (out / name).unlink(missing_ok=True)
    written = []
    for name, table, cols in (("solo.csv", res.solo, SOLO_COLUMNS), ("corun.csv", res.corun, CORUN_COLUMNS)):
        if table is not None:
            write_table(table[list(cols)], out / name)
            written.append(str(out / name))
    from stsched.io import write_atomic

    write_atomic(out / IMPORT_MARKER, json.dumps({**me, "files": [Path(w).name for w in written]}, indent=1) + "\n")
    models: set[str] = set()
    if res.solo is not None:
        models |= set(res.solo["model"])
    if res.corun is not None:
        models |= set(res.corun["victim"]) | set(res.corun["corunner"])
    summary = {
        "source": source, "out_dir": str(out),
        "solo_rows": 0 if res.solo is None else len(res.solo),
        "corun_rows": 0 if res.corun is None else len(res.corun),
        "skipped_rows": res.skipped, "models": sorted(models), "written": written,
    }
    log.info("imported %s: %d solo, %d corun rows (%d skipped) -> %s", source, summary["solo_rows"],
             summary["corun_rows"], res.skipped, out)
    return summary


# -------------------------------------------------------------------------------------- scenario-file readers
#: Column order of ParvaGPU's SLO files: its prof_data file names sorted with strcmp (src/data_load.c).
PARVAGPU_MODELS: tuple[str, ...] = ("bert", "densenet121", "densenet169", "densenet201", "inceptionv3",
                                    "mobilenetv2", "resnet101", "resnet152", "resnet50", "vgg16", "vgg19")
#: ParvaGPU's scenario numbers of the rows shipped here (3 and 5 are held back by the project's maintainers).
PARVAGPU_SHIPPED_SCENARIOS: tuple[int, ...] = (1, 2, 4, 6)


def read_parvagpu_scenarios(rates_csv: str | os.PathLike[str], slos_csv: str | os.PathLike[str], *,
                            models: Sequence[str] = PARVAGPU_MODELS, truncate_slo: bool = False,
                            aliases: dict[str, str] | None = None) -> list[dict[str, tuple[float, float]]]:
    """ParvaGPU's `SLO_req_rate.csv` + `SLO_latency.csv` -> one dict model -> (rate req/s, slo ms) per row.

    Both files are headerless, one scenario per row (row 1 = list index 0), one column per model in
    `models` order (source names); `N/A` marks a model absent from the scenario.  Keys of the result are the
    names after `aliases` (default `PARVAGPU_MODEL_ALIASES`: bert -> bert-large, as in the a100-mig data set).
    `truncate_slo=True` reads values the way ParvaGPU's loader does (C `atoi`: 418.5 -> 418; rates are integers
    in every shipped row).
    """
    names = list(models)
    alias = PARVAGPU_MODEL_ALIASES if aliases is None else aliases
    rates, slos = read_headerless(rates_csv, names), read_headerless(slos_csv, names)
    if len(rates) != len(slos):
        raise InputError(f"{len(rates)} rate rows but {len(slos)} SLO rows in {slos_csv}", source=str(rates_csv))
    out: list[dict[str, tuple[float, float]]] = []
    for n, ((_, r), (_, s)) in enumerate(zip(rates.iterrows(), slos.iterrows(), strict=True)):
        scen: dict[str, tuple[float, float]] = {}
        for m in names:
            ra, sl = r[m].upper() == "N/A", s[m].upper() == "N/A"
            if ra != sl:
                raise InputError(f"data row {n + 1}: model {m} is N/A in only one of the rate and SLO files",
                                 source=str(rates_csv))
            if ra:
                continue
            vals = []
            for text, src in ((r[m], rates_csv), (s[m], slos_csv)):
                try:
                    v = float(text)
                except ValueError:
                    raise InputError(f"data row {n + 1}: {m} value '{text}' is not numeric", source=str(src)) from None
                if not np.isfinite(v) or v <= 0:
                    raise InputError(f"data row {n + 1}: {m} value {text} must be > 0", source=str(src))
                vals.append(float(int(v)) if truncate_slo else v)
            scen[alias.get(m, m)] = (vals[0], vals[1])
        out.append(scen)
    return out


_DEPLOY = ["Num instance", "Num GPU", "Model", "Placement", "Instance size", "Batch size", "Num proc"]


def read_parvagpu_deployment(deploy_csv: str | os.PathLike[str]) -> pd.DataFrame:
    """ParvaGPU's `SLO<k>_ParvaGPU_deploy.csv` -> DataFrame(gpu, model, instance_size, batch, procs, placement,
    node, node_gpu).

    `gpu` numbers the distinct (node, node_gpu) pairs 0..G-1 in sorted order; `bert` -> `bert-large`.
    `placement` is ParvaGPU's internal slot index, not an NVIDIA MIG start slot (see PROVENANCE): only the
    instance sizes per GPU are meaningful.
    """
    src = str(deploy_csv)
    raw = read_headed(deploy_csv, _DEPLOY)
    df = pd.DataFrame({
        "node": _num(raw, "Num instance", src), "node_gpu": _num(raw, "Num GPU", src),
        "model": raw["Model"].str.lower().replace(PARVAGPU_MODEL_ALIASES),
        "instance_size": _num(raw, "Instance size", src),
        "batch": _num(raw, "Batch size", src), "procs": _num(raw, "Num proc", src),
        "placement": _num(raw, "Placement", src),
    }, index=raw.index)
    for col in ("node", "node_gpu", "batch", "procs", "placement", "instance_size"):
        bad = df[col].isna() | (df[col] % 1 != 0) | (df[col] < (1 if col in ("batch", "procs") else 0))
        if bad.any():
            raise InputError(f"column '{col}' is not a valid integer in data rows "
                             f"{', '.join(str(i + 1) for i in df.index[bad][:5])}", source=src)
    bad = ~df["instance_size"].isin([1, 2, 3, 4, 7])
    if bad.any():
        raise InputError(f"'Instance size' is not a MIG size (1,2,3,4,7) in data rows "
                         f"{', '.join(str(i + 1) for i in df.index[bad][:5])}", source=src)
    df = df.astype({c: "int64" for c in ("node", "node_gpu", "batch", "procs", "placement", "instance_size")})
    df["gpu"] = df.groupby(["node", "node_gpu"]).ngroup()
    cols = ["gpu", "model", "instance_size", "batch", "procs", "placement", "node", "node_gpu"]
    return df[cols].reset_index(drop=True)


@dataclass(frozen=True)
class RateMix:
    """A gpulet evaluation mix: at step i (1-based) model m gets `weights[m] * levels[i-1]` req/s."""

    name: str
    models: tuple[str, ...]
    slo_ms: dict[str, float]
    weights: dict[str, float]
    levels: tuple[float, ...]
    note: str = ""

    def rates(self, step: int) -> dict[str, float]:
        """Request rate per model at 1-based `step`."""
        if not 1 <= step <= len(self.levels):
            raise InputError(f"mix {self.name}: step {step} outside 1..{len(self.levels)}")
        return {m: self.weights[m] * self.levels[step - 1] for m in self.models}


@dataclass(frozen=True)
class GletResources:
    """gpulet's SLOs, evaluation mixes and scheduler constants.

    slo_ms: per-model SLO used by its scenario scripts; config_slo_ms: the `SLO` field of resource/config/*.json
    (differs for lenet2..6: 50 vs 5); apps: game, traffic; scenarios: scen1..scen5; mem_mb: resource/
    mem-config.json; interference_constants: device -> (c_l2_self, c_l2_other, c_dram_self, c_dram_other, c0).
    """

    slo_ms: dict[str, float]
    config_slo_ms: dict[str, float]
    apps: dict[str, RateMix]
    scenarios: dict[str, RateMix]
    mem_mb: dict[str, float]
    interference_constants: dict[str, tuple[float, ...]]
    context_overhead_mb: float = 1230.0
    memory_cap_fraction: float = 0.9


# Facts from casys-kaist/glet scripts/createMultiModelScenConfigs.py and createMultiModelAppConfigs.py, quoted in
# data/profiles/glet-*/raw/PROVENANCE.md (the scripts themselves were not copied).
_GLET_SCRIPT_SLO: dict[str, float] = {
    **{f"lenet{i}": 5.0 for i in range(1, 7)}, "googlenet": 66.0, "resnet50": 108.0, "ssd-mobilenetv1": 202.0,
    "vgg16": 142.0, "mnasnet1_0": 62.0, "mobilenet_v2": 64.0, "densenet161": 202.0, "bert": 22.0,
}
_GLET_SCENS: dict[str, tuple[str, ...]] = {
    "scen1": ("googlenet", "bert", "mnasnet1_0", "mobilenet_v2"), "scen2": ("densenet161", "vgg16"),
    "scen3": ("resnet50", "vgg16", "mobilenet_v2"), "scen4": ("ssd-mobilenetv1", "mnasnet1_0", "densenet161"),
    "scen5": ("lenet1", "ssd-mobilenetv1", "vgg16", "mnasnet1_0"),
}
# scen1: the script doubles the rate of models in its list ['googlenet', 'mnasnet', 'bert', 'lenet1'] (100*i vs
# 50*i).  'mnasnet' never matches 'mnasnet1_0', so in the configs it wrote mnasnet1_0 gets 50*i, although the
# PROVENANCE (and the script's intent) lists it at 100*i.  We reproduce what the script wrote.
_SCEN1_WEIGHTS = {"googlenet": 2.0, "bert": 2.0, "mnasnet1_0": 1.0, "mobilenet_v2": 1.0}
_GLET_APPS: dict[str, tuple[dict[str, float], tuple[float, ...]]] = {
    "game": ({**{f"lenet{i}": 108.0 for i in range(1, 7)}, "resnet50": 108.0},
             tuple(float(r) for r in range(100, 2500, 100))),
    "traffic": ({"ssd-mobilenetv1": 90.0, "googlenet": 112.0, "vgg16": 112.0},
                tuple(float(r) for r in range(100, 900, 50))),
}


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg} at line {exc.lineno}", source=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=str(path)) from None


def read_glet_slos_and_mixes(resource_dir: str | os.PathLike[str]) -> GletResources:
    """gpulet's `resource/` folder -> SLOs, app mixes (game, traffic), scen1..scen5 and scheduler constants."""
    root = Path(resource_dir)
    if not (root / "config").is_dir():
        raise InputError("not a gpulet resource/ folder (no config/ inside)", source=str(root))
    config_slo: dict[str, float] = {}
    app_config_slo: dict[str, dict[str, float]] = {}
    for f in sorted((root / "config").glob("*.json")):
        spec = _json(f)
        slos = {str(m["model"]).lower(): float(m["SLO"]) for m in spec.get("Models", []) if "SLO" in m}
        if f.stem in _GLET_APPS:
            app_config_slo[f.stem] = slos
        else:
            config_slo.update(slos)
    mem = {str(m["name"]).lower(): float(m["mem"]) for m in _json(root / "mem-config.json").get("models", [])}
    constants: dict[str, tuple[float, ...]] = {}
    for f in sorted(root.glob("*/INT_MODEL_CONSTANT.CSV")):
        raw = read_headed(f, ["l2_util_m1", "l2_util_m2", "dram_util_m1", "dram_util_m2", "constant"])
        constants[f.parent.name] = tuple(float(_num(raw, c, str(f)).iloc[0]) for c in raw.columns[:5])
    scen = {}
    for name, models in _GLET_SCENS.items():
        weights = _SCEN1_WEIGHTS if name == "scen1" else {m: 1.0 for m in models}
        base = 50.0 if name == "scen1" else 10.0
        scen[name] = RateMix(name, models, {m: _GLET_SCRIPT_SLO[m] for m in models}, dict(weights),
                             tuple(base * i for i in range(1, 301)),
                             "rate = weight * level; metric: largest step served within SLO" +
                             ("; mnasnet1_0 at 50*i as the script wrote it (PROVENANCE says 100*i)"
                              if name == "scen1" else ""))
    apps = {name: RateMix(name, tuple(slos), dict(slos), {m: 1.0 for m in slos}, levels,
                          f"config/{name}.json SLOs: {app_config_slo.get(name, {})}")
            for name, (slos, levels) in _GLET_APPS.items()}
    return GletResources(dict(_GLET_SCRIPT_SLO), config_slo, apps, scen, mem, constants)
