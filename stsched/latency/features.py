"""Training data for the latency model: cleaned solo and co-run tables, and the per-row interference features.

Profiles arrive in the long schema of `stsched.data.schema` (`ProfileSet.solo` / `.corun`), but `fit` also
accepts hand-made frames, so every check is repeated here with messages that name the data rows (1-based, as
the schema does):
- a missing, NaN or zero latency (ParvaGPU marks out-of-memory cells 0,0) is skipped with a warning naming rows;
- a negative or infinite value, a utilisation outside [0, 1], a batch < 1, a partition <= 0 or a repeated key
  is an `InputError` naming rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stsched.errors import InputError

log = logging.getLogger(__name__)

SOLO_REQUIRED = ("model", "batch", "partition", "latency_ms")
CORUN_REQUIRED = ("victim", "victim_batch", "victim_partition", "corunner", "corunner_batch",
                  "corunner_partition", "victim_latency_ms")
_MAX_LISTED = 5


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    idx = [int(i) + 1 if isinstance(i, (int, np.integer)) else i for i in index[mask]]
    more = f" (and {len(idx) - _MAX_LISTED} more)" if len(idx) > _MAX_LISTED else ""
    return f"data row{'s' if len(idx) > 1 else ''} {', '.join(map(str, idx[:_MAX_LISTED]))}{more}"


def _numeric(df: pd.DataFrame, col: str, source: str) -> pd.Series:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    text = raw.astype("string").str.strip()
    bad = num.isna() & raw.notna() & ~text.isin(["", "nan", "NaN", "<NA>"])
    if bad.any():
        raise InputError(f"column '{col}' is not numeric in {_rows(df.index, bad.to_numpy())}", source=source)
    if np.isinf(num).any():
        raise InputError(f"column '{col}' is infinite in {_rows(df.index, np.isinf(num).to_numpy())}", source=source)
    return num


def _require(df: pd.DataFrame, cols: tuple[str, ...], source: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", source=source)


def _skip_absent(df: pd.DataFrame, num: pd.Series, col: str, source: str) -> pd.DataFrame:
    absent = (num.isna() | (num == 0)).to_numpy()
    if absent.any():
        log.warning("%s: skipped %d row(s) with a missing, NaN or zero %s (not measured / OOM): %s", source,
                    int(absent.sum()), col, _rows(df.index, absent))
    return df[~absent]


def clean_solo(solo: pd.DataFrame, source: str = "solo profile") -> pd.DataFrame:
    """A solo table with columns model, batch, partition, procs, latency_ms, throughput_rps, l2_util, dram_util
    (optional ones filled with NaN / 1), rows without a latency skipped, bad values rejected (see module doc)."""
    if solo is None or len(solo) == 0:
        raise InputError("no solo rows", source=source)
    _require(solo, SOLO_REQUIRED, source)
    df = solo.copy()
    lat = _numeric(df, "latency_ms", source)
    neg = (lat < 0).to_numpy()
    if neg.any():
        raise InputError(f"column 'latency_ms' is negative in {_rows(df.index, neg)}", source=source)
    df["latency_ms"] = lat
    df = _skip_absent(df, lat, "latency_ms", source)
    if df.empty:
        raise InputError("no solo row has a latency", source=source)
    out = pd.DataFrame(index=df.index)
    out["model"] = df["model"].astype(str).str.strip().str.lower()
    for col, lo, integer in (("batch", 1, True), ("partition", None, False), ("procs", 1, True)):
        v = _numeric(df, col, source) if col in df.columns else pd.Series(1.0, index=df.index)
        bad = v.isna() | (v <= 0 if lo is None else v < lo) | ((v % 1 != 0) if integer else False)
        if bad.any():
            raise InputError(f"column '{col}' must be {'an integer >= 1' if integer else '> 0'} in "
                             f"{_rows(df.index, bad.to_numpy())}", source=source)
        out[col] = v.astype(int) if integer else v
    out["latency_ms"] = df["latency_ms"].astype(float)
    for col, hi in (("throughput_rps", None), ("l2_util", 1.0), ("dram_util", 1.0)):
        v = _numeric(df, col, source) if col in df.columns else pd.Series(np.nan, index=df.index)
        bad = (v < 0) | ((v > hi) if hi is not None else False)
        if bad.any():
            raise InputError(f"column '{col}' must lie in [0, {hi if hi else 'inf'}] in "
                             f"{_rows(df.index, bad.to_numpy())}", source=source)
        out[col] = v.where(v > 0) if col == "throughput_rps" else v
    dup = out.duplicated(["model", "batch", "partition", "procs"]).to_numpy()
    if dup.any():
        raise InputError(f"(model, batch, partition, procs) repeats an earlier row in {_rows(df.index, dup)}",
                         source=source)
    return out


def clean_corun(corun: pd.DataFrame, source: str = "co-run profile") -> pd.DataFrame:
    """A co-run table (schema columns), rows without a victim latency skipped, bad values rejected."""
    if corun is None or len(corun) == 0:
        raise InputError("no co-run rows", source=source)
    _require(corun, CORUN_REQUIRED, source)
    df = corun.copy()
    lat = _numeric(df, "victim_latency_ms", source)
    neg = (lat < 0).to_numpy()
    if neg.any():
        raise InputError(f"column 'victim_latency_ms' is negative in {_rows(df.index, neg)}", source=source)
    df["victim_latency_ms"] = lat
    df = _skip_absent(df, lat, "victim_latency_ms", source)
    out = pd.DataFrame(index=df.index)
    for side in ("victim", "corunner"):
        out[side] = df[side].astype(str).str.strip().str.lower()
        b = _numeric(df, f"{side}_batch", source)
        p = _numeric(df, f"{side}_partition", source)
        bad = b.isna() | (b < 1) | (b % 1 != 0) | p.isna() | (p <= 0)
        if bad.any():
            raise InputError(f"{side} batch must be an integer >= 1 and partition > 0 in "
                             f"{_rows(df.index, bad.to_numpy())}", source=source)
        out[f"{side}_batch"] = b.astype(int)
        out[f"{side}_partition"] = p
    out["victim_latency_ms"] = df["victim_latency_ms"].astype(float)
    return out


def solo_points(solo: pd.DataFrame) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """Per (model, procs): arrays batch, size, latency_ms, l2_util, dram_util, tput_ratio (NaN = absent).

    tput_ratio = measured per-process throughput / (1000 b / latency): 1 for a closed-loop measurement, above 1
    where transfers overlap compute (iGniter's trtexec), used to turn predicted latency into throughput.
    """
    out = {}
    for (model, procs), g in solo.sort_values(["model", "procs", "partition", "batch"]).groupby(["model", "procs"]):
        b = g["batch"].to_numpy(float)
        lat = g["latency_ms"].to_numpy(float)
        out[(str(model), int(procs))] = {
            "batch": b, "size": g["partition"].to_numpy(float), "latency_ms": lat,
            "l2_util": g["l2_util"].to_numpy(float), "dram_util": g["dram_util"].to_numpy(float),
            "tput_ratio": g["throughput_rps"].to_numpy(float) * lat / (1000.0 * b),
        }
    return out


@dataclass(frozen=True, eq=False)
class Side:
    """Interference features of one side of many co-run rows (arrays); duck-types `interference.Features`."""

    l2_util: np.ndarray
    dram_util: np.ndarray
    fraction: np.ndarray
    latency_ms: np.ndarray
    batch: np.ndarray
    elasticity: np.ndarray  # SM elasticity -dlnL/dlnp of the solo surface (1: compute-bound, 0: launch-bound)

    def take(self, mask: np.ndarray) -> "Side":
        return Side(*(getattr(self, f)[mask] for f in ("l2_util", "dram_util", "fraction", "latency_ms", "batch",
                                                        "elasticity")))


@dataclass(frozen=True, eq=False)
class CorunData:
    """Co-run rows with model-derived features: the victim's and co-runner's `Side`, and the measured slowdown."""

    rows: pd.DataFrame  # the cleaned co-run rows kept (same order as the arrays)
    victim: Side
    other: Side
    slowdown: np.ndarray  # victim co-run latency / the model's solo latency at the same point

    def take(self, mask: np.ndarray) -> "CorunData":
        return CorunData(self.rows[mask], self.victim.take(mask), self.other.take(mask), self.slowdown[mask])

    def __len__(self) -> int:
        return len(self.slowdown)
