"""Importer of this project's own profiler output (`stsched profile --out DIR`, or the `sm_*` / `gpu_*` copies
that `scripts/gpu_check.sh` collects): `solo.csv` [+ `corun.csv`], already in the long schema of `schema.py`.

Nothing is converted (the profiler writes ms, SM counts / percent / threads as measured and read back).  The
tables are validated with `validate_solo` / `validate_corun`, checked for what the profiler guarantees beyond
the schema (one device and one mechanism across both tables; `throughput_rps = 1000 x batch / latency_ms`), and
sorted deterministically, so a data set shipped from a profiler run is re-created byte-exact from its raw copies.
Registered as `stsched-profiler` in `importers.IMPORTERS`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stsched.data.importers import ImportResult, read_headed
from stsched.data.schema import CORUN_COLUMNS, SOLO_COLUMNS, validate_corun, validate_solo
from stsched.errors import InputError

log = logging.getLogger(__name__)

#: Sort keys of the imported tables (every key column, so the order is total).
SOLO_ORDER: tuple[str, ...] = ("model", "procs", "partition", "batch")
CORUN_ORDER: tuple[str, ...] = ("victim_partition", "corunner_partition", "victim", "corunner", "victim_batch",
                                "corunner_batch")
#: Relative tolerance of the check throughput_rps == 1000 x batch / latency_ms.
THROUGHPUT_RTOL = 1e-9


def _header(path: str) -> list[str]:
    """The header row of a CSV (for telling a solo table from a co-run table)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", source=path)
    try:
        with p.open(encoding="utf-8-sig") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=path) from None
    return [c.strip() for c in first.strip().split(",")]


def _kind(path: str) -> str:
    cols = set(_header(path))
    if set(CORUN_COLUMNS) <= cols:
        return "corun"
    if set(SOLO_COLUMNS) <= cols:
        return "solo"
    raise InputError(f"not a profiler table: the header has neither the solo columns ({', '.join(SOLO_COLUMNS)}) "
                     f"nor the co-run columns ({', '.join(CORUN_COLUMNS)})", source=path)


def _check_throughput(raw_index: pd.Index, solo: pd.DataFrame, source: str) -> None:
    tput = solo["throughput_rps"].to_numpy(float)
    want = 1000.0 * solo["batch"].to_numpy(float) / solo["latency_ms"].to_numpy(float)
    bad = np.isfinite(tput) & ~np.isclose(tput, want, rtol=THROUGHPUT_RTOL, atol=0.0)
    if bad.any():
        rows = ", ".join(str(int(i) + 1) for i in raw_index[bad][:5])
        raise InputError(f"throughput_rps differs from 1000 x batch / latency_ms (the profiler's definition) in "
                         f"data rows {rows}", source=source)


def _one_value(tables: list[tuple[str, pd.DataFrame]], col: str) -> str:
    seen: dict[str, str] = {}
    for src, df in tables:
        for v in sorted(set(df[col])):
            seen.setdefault(v, src)
    if len(seen) != 1:
        where = "; ".join(f"'{v}' in {s}" for v, s in seen.items())
        raise InputError(f"a profiler output holds one {col}, found {len(seen)}: {where}")
    return next(iter(seen))


def import_profiler(paths: Sequence[str | os.PathLike[str]]) -> ImportResult:
    """The profiler's `solo.csv` and optional `corun.csv` (any order, told apart by their header) -> tables.

    Raises InputError (one line naming the file and data rows) on anything the schema rejects, a second table
    of the same kind, more than one device or mechanism, or a throughput that is not 1000 x batch / latency.
    """
    files = [str(p) for p in paths]
    if not 1 <= len(files) <= 2:
        raise InputError(f"the profiler importer takes solo.csv [+ corun.csv]; got {len(files)} path(s)")
    by_kind: dict[str, str] = {}
    for f in files:
        k = _kind(f)
        if k in by_kind:
            raise InputError(f"two {k} tables given: {by_kind[k]} and {f}", source=f)
        by_kind[k] = f
    if "solo" not in by_kind:
        raise InputError("no solo table given (a co-run table alone cannot be imported)", source=files[0])

    src = by_kind["solo"]
    raw = read_headed(src, SOLO_COLUMNS)
    solo = validate_solo(raw, src)
    _check_throughput(raw.index, solo, src)
    tables = [(src, solo)]
    corun = None
    if "corun" in by_kind:
        csrc = by_kind["corun"]
        corun = validate_corun(read_headed(csrc, CORUN_COLUMNS), csrc)
        tables.append((csrc, corun))
    device, mech = _one_value(tables, "device"), _one_value(tables, "mechanism")

    solo = solo.sort_values(list(SOLO_ORDER), kind="mergesort").reset_index(drop=True)
    if corun is not None:
        corun = corun.sort_values(list(CORUN_ORDER), kind="mergesort").reset_index(drop=True)
    log.info("profiler output %s: %s/%s, %d solo, %d co-run rows", src, device, mech, len(solo),
             0 if corun is None else len(corun))
    return ImportResult(solo, corun, 0)
