"""The long-format profile schema shared by every data set, and its validation.

Two tables:

* **solo** (`solo.csv`): one row per (device, mechanism, model, batch, partition, procs) measured alone.
* **corun** (`corun.csv`): one row per measured victim latency while a co-runner runs in the neighbouring
  partition of the same GPU.

`SOLO_COLUMNS` / `CORUN_COLUMNS` are the single source of truth for the column order; `COLUMN_DOCS` holds the
unit and meaning of each column and is what `data/README.md` documents (a test keeps the two in agreement).

Row numbers in error messages are 1-based *data* row numbers (the header is not counted).  They are taken from
the DataFrame's index (label + 1), so importers keep the source file's 0-based data row as the index and the
messages name rows of the original file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from stsched.errors import InputError, has_control

SOLO_COLUMNS: tuple[str, ...] = (
    "device", "mechanism", "model", "batch", "partition", "procs",
    "latency_ms", "throughput_rps", "l2_util", "dram_util",
)
CORUN_COLUMNS: tuple[str, ...] = (
    "device", "mechanism", "victim", "victim_batch", "victim_partition",
    "corunner", "corunner_batch", "corunner_partition", "victim_latency_ms", "corunner_latency_ms",
)
MECHANISMS: tuple[str, ...] = ("mps", "sm", "mig", "cpu", "none")
MIG_SIZES: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 7.0)

#: (type, unit, meaning) per column; `type` is one of str, int, float.
COLUMN_DOCS: dict[str, dict[str, tuple[str, str, str]]] = {
    "solo": {
        "device": ("str", "-", "device name, lower case, e.g. `a100-80gb`"),
        "mechanism": ("str", "-", "one of `mps`, `sm`, `mig`, `cpu`, `none`"),
        "model": ("str", "-", "model name, lower case, as the source names it"),
        "batch": ("int", "requests", "batch size, >= 1"),
        "partition": ("float", "see meaning",
                      "mps: percent of SMs (0 < p <= 100); sm: SM count; mig: compute slices (GPCs, 1,2,3,4,7); "
                      "cpu: CPU threads (the profiler's CPU path); none: 100"),
        "procs": ("int", "processes", "MPS processes of the same model inside the partition, >= 1 (1 unless the "
                                      "source says otherwise)"),
        "latency_ms": ("float", "ms", "latency of one batch (mean in imported data sets, median in profiler output: meta.json `statistic`), > 0 (empty only in data sets whose meta.json "
                                      "says `has_latency: false`)"),
        "throughput_rps": ("float", "requests/s", "throughput PER PROCESS as measured, > 0, or empty"),
        "l2_util": ("float", "fraction", "L2 throughput, % of peak / 100, in [0, 1], or empty"),
        "dram_util": ("float", "fraction", "DRAM throughput, % of peak / 100, in [0, 1], or empty"),
    },
    "corun": {
        "device": ("str", "-", "device name, lower case"),
        "mechanism": ("str", "-", "one of `mps`, `sm`, `mig`, `cpu`, `none`"),
        "victim": ("str", "-", "model whose latency is reported"),
        "victim_batch": ("int", "requests", "victim batch size, >= 1"),
        "victim_partition": ("float", "as solo `partition`", "victim's partition"),
        "corunner": ("str", "-", "model running in the neighbouring partition of the same GPU"),
        "corunner_batch": ("int", "requests", "co-runner batch size, >= 1"),
        "corunner_partition": ("float", "as solo `partition`", "co-runner's partition"),
        "victim_latency_ms": ("float", "ms", "victim's mean batch latency while co-running, > 0"),
        "corunner_latency_ms": ("float", "ms", "co-runner's mean batch latency, > 0, or empty if not measured"),
    },
}

#: the `models` field of a profiler-written meta.json: one object per model name of its tables, with these keys
#: (data/README.md, "Model sources"; a test keeps the two equal)
MODEL_SOURCE_DOCS: dict[str, tuple[str, str]] = {
    "source": ("str", "where the model came from: `zoo (profiler.nets, random weights)`, `python PKG.MODULE:FACTORY`, "
                      "`torchvision VERSION models.get_model(NAME, weights=None)` or `transformers VERSION "
                      "AutoModel.from_config(CONFIG()), random weights`"),
    "params": ("int", "parameter count of the model as built"),
    "input_shape": ("list[int]", "one sample's input shape (token ids: the sequence length)"),
    "tokens": ("bool", "inputs are int64 token ids (else float32 normal samples)"),
}

_MAX_LISTED = 5


def _rows(df: pd.DataFrame, mask: pd.Series | np.ndarray) -> str:
    """'rows 3, 7, 9' for the first offending rows (1-based data rows), with a count of the rest."""
    idx = list(df.index[np.asarray(mask, dtype=bool)])
    shown = ", ".join(str(int(i) + 1) if isinstance(i, (int, np.integer)) else str(i) for i in idx[:_MAX_LISTED])
    more = f" (and {len(idx) - _MAX_LISTED} more)" if len(idx) > _MAX_LISTED else ""
    word = "row" if len(idx) == 1 else "rows"
    return f"data {word} {shown}{more}"


def _fail(df: pd.DataFrame, mask: pd.Series | np.ndarray, column: str, what: str, source: str | None) -> None:
    raise InputError(f"column '{column}' {what} in {_rows(df, mask)}", source=source)


def _require_columns(df: pd.DataFrame, columns: Iterable[str], source: str | None) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} (found: {', '.join(map(str, df.columns))})",
                         source=source)




def _check_str(df: pd.DataFrame, col: str, source: str | None, allowed: tuple[str, ...] | None = None) -> pd.Series:
    raw = df[col]
    s = raw.astype("string").str.strip()
    empty = s.isna() | (s == "")
    if empty.any():
        _fail(df, empty, col, "is empty", source)
    bad = {v for v in s.dropna().unique() if has_control(v)}  # few distinct names: each tested once
    ctrl = s.isin(bad)
    if ctrl.any():  # as in instances and plans (stsched.io): such a name would be refused downstream
        _fail(df, ctrl, col, "holds control characters", source)
    if (s != s.str.lower()).any():
        _fail(df, s != s.str.lower(), col, "is not lower case", source)
    if allowed is not None:
        bad = ~s.isin(allowed)
        if bad.any():
            _fail(df, bad, col, f"is not one of {', '.join(allowed)}", source)
    return s.astype(object)


def to_float(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Column -> (float Series, mask of non-numeric cells).

    Text is parsed with Python's `float` (exact, correctly rounded, whatever the pandas version); empty
    cells, None and "nan" are missing values (NaN), not errors.
    """
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype(float), pd.Series(False, index=raw.index)
    vals, bad = [], []
    for v in raw:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            vals.append(math.nan)
            bad.append(False)
            continue
        text = str(v).strip()
        if text == "" or text.lower() == "nan":
            vals.append(math.nan)
            bad.append(False)
            continue
        try:
            vals.append(float(text))
            bad.append(isinstance(v, bool))
        except ValueError:
            vals.append(math.nan)
            bad.append(True)
    return pd.Series(vals, index=raw.index, dtype=float), pd.Series(bad, index=raw.index, dtype=bool)


def _check_num(df: pd.DataFrame, col: str, source: str | None, *, required: bool, integer: bool = False,
               positive: bool = True, lo: float | None = None, hi: float | None = None) -> pd.Series:
    num, nonnum = to_float(df[col])
    if nonnum.any():
        _fail(df, nonnum, col, "is not numeric", source)
    if required and num.isna().any():
        _fail(df, num.isna(), col, "is empty or NaN", source)
    present = num.notna()
    if (present & ~np.isfinite(num.fillna(0.0))).any():
        _fail(df, present & ~np.isfinite(num.fillna(0.0)), col, "is infinite", source)
    if positive and (present & (num <= 0)).any():
        _fail(df, present & (num <= 0), col, "must be > 0", source)
    if lo is not None and (present & (num < lo)).any():
        _fail(df, present & (num < lo), col, f"must be >= {lo:g}", source)
    if hi is not None and (present & (num > hi)).any():
        _fail(df, present & (num > hi), col, f"must be <= {hi:g}", source)
    if integer:
        frac = present & (num.fillna(0.0) % 1 != 0)
        if frac.any():
            _fail(df, frac, col, "is not an integer", source)
        return num.astype("int64")
    return num


def _check_partition(df: pd.DataFrame, mech: pd.Series, part: pd.Series, col: str, source: str | None) -> None:
    bad_mps = (mech == "mps") & (part > 100)
    if bad_mps.any():
        _fail(df, bad_mps, col, "is over 100 % for mechanism mps", source)
    bad_none = (mech == "none") & (part != 100)
    if bad_none.any():
        _fail(df, bad_none, col, "must be 100 for mechanism none", source)
    bad_mig = (mech == "mig") & ~part.isin(MIG_SIZES)
    if bad_mig.any():
        _fail(df, bad_mig, col, "is not a MIG size (1, 2, 3, 4, 7)", source)


def _check_unique(df: pd.DataFrame, out: pd.DataFrame, keys: list[str], source: str | None) -> None:
    dup = out.duplicated(subset=keys, keep="first").to_numpy()
    if dup.any():
        _fail(df, dup, "/".join(keys), "repeats an earlier key", source)


def validate_solo(df: pd.DataFrame, source: str | None = None, *, require_latency: bool = True) -> pd.DataFrame:
    """Check a solo table and return it normalised: exactly `SOLO_COLUMNS`, typed, index 0..n-1.

    Raises `InputError` (one line, naming `source` and the first offending data rows) on a missing column,
    a non-numeric, NaN, non-positive or out-of-range value, an unknown mechanism, or a repeated key.
    `require_latency=False` admits empty `latency_ms` (data sets with utilisation only).
    """
    _require_columns(df, SOLO_COLUMNS, source)
    out = pd.DataFrame(index=df.index)
    out["device"] = _check_str(df, "device", source)
    out["mechanism"] = _check_str(df, "mechanism", source, MECHANISMS)
    out["model"] = _check_str(df, "model", source)
    out["batch"] = _check_num(df, "batch", source, required=True, integer=True)
    out["partition"] = _check_num(df, "partition", source, required=True)
    out["procs"] = _check_num(df, "procs", source, required=True, integer=True)
    out["latency_ms"] = _check_num(df, "latency_ms", source, required=require_latency)
    out["throughput_rps"] = _check_num(df, "throughput_rps", source, required=False)
    out["l2_util"] = _check_num(df, "l2_util", source, required=False, positive=False, lo=0.0, hi=1.0)
    out["dram_util"] = _check_num(df, "dram_util", source, required=False, positive=False, lo=0.0, hi=1.0)
    _check_partition(df, out["mechanism"], out["partition"], "partition", source)
    _check_unique(df, out, ["device", "mechanism", "model", "batch", "partition", "procs"], source)
    return out.reset_index(drop=True)


def validate_corun(df: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Check a co-run table and return it normalised: exactly `CORUN_COLUMNS`, typed, index 0..n-1.

    Same rules as `validate_solo`; `victim_latency_ms` is required, `corunner_latency_ms` may be empty.
    For mps the two partitions must sum to at most 100.
    """
    _require_columns(df, CORUN_COLUMNS, source)
    out = pd.DataFrame(index=df.index)
    out["device"] = _check_str(df, "device", source)
    out["mechanism"] = _check_str(df, "mechanism", source, MECHANISMS)
    out["victim"] = _check_str(df, "victim", source)
    out["victim_batch"] = _check_num(df, "victim_batch", source, required=True, integer=True)
    out["victim_partition"] = _check_num(df, "victim_partition", source, required=True)
    out["corunner"] = _check_str(df, "corunner", source)
    out["corunner_batch"] = _check_num(df, "corunner_batch", source, required=True, integer=True)
    out["corunner_partition"] = _check_num(df, "corunner_partition", source, required=True)
    out["victim_latency_ms"] = _check_num(df, "victim_latency_ms", source, required=True)
    out["corunner_latency_ms"] = _check_num(df, "corunner_latency_ms", source, required=False)
    for col in ("victim_partition", "corunner_partition"):
        _check_partition(df, out["mechanism"], out[col], col, source)
    over = (out["mechanism"] == "mps") & (out["victim_partition"] + out["corunner_partition"] > 100 + 1e-9)
    if over.any():
        _fail(df, over, "victim_partition+corunner_partition", "exceeds 100 % for mechanism mps", source)
    _check_unique(df, out, list(CORUN_COLUMNS[:8]), source)
    return out.reset_index(drop=True)


def empty_corun() -> pd.DataFrame:
    """An empty co-run table with the schema's columns and dtypes."""
    return validate_corun(pd.DataFrame({c: pd.Series(dtype=object) for c in CORUN_COLUMNS}))

