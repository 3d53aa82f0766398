"""Loaders for the data shipped in the repository's `data/` folder (or `$STSCHED_DATA`).

Layout: `data/profiles/<dataset>/{solo.csv, corun.csv?, meta.json, raw/}`, `data/models.csv`,
`data/traces/<trace>/`.  Everything is validated on load and cached; callers get fresh copies of the tables.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from stsched.data.importers import IMPORTERS, _json, read_headed, run_import
from stsched.data.schema import CORUN_COLUMNS, SOLO_COLUMNS, to_float, validate_corun, validate_solo
from stsched.errors import InputError

log = logging.getLogger(__name__)

#: The shipped data: the repository's `data/` folder in a source checkout or an editable install, else the copy
#: that a wheel carries as package data (`stsched/_data`, a link to `../data` in the repository).  `$STSCHED_DATA`
#: overrides both (data/README.md).
_REPO_DATA = Path(__file__).resolve().parents[2] / "data"
_PACKAGE_DATA = Path(__file__).resolve().parents[1] / "_data"
DATA_DIR: Path = Path(os.environ.get("STSCHED_DATA") or (_REPO_DATA if (_REPO_DATA / "profiles").is_dir()
                                                         else _PACKAGE_DATA))

MODELS_COLUMNS: tuple[str, ...] = ("model", "params_millions", "weights_mb", "source", "gpulet_mem_mb")


def data_dir() -> Path:
    """The data folder in force now: `$STSCHED_DATA` if set, else `DATA_DIR`."""
    env = os.environ.get("STSCHED_DATA")
    return Path(env) if env else DATA_DIR


@dataclass(frozen=True)
class DatasetMeta:
    """A data set's `meta.json`, typed."""

    name: str
    description: str
    device: str
    gpu: str
    sm_count: int
    memory_mb: float
    mechanism: str
    partition_capacity: float
    partition_sizes: tuple[float, ...]
    has_latency: bool
    source_repo: str
    source_commit: str
    licence: str
    held_back: str
    importer: str
    raw_inputs: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, path: Path) -> DatasetMeta:
        """Read and type-check a meta.json; a missing or mistyped field is an InputError naming it."""
        raw = _json(path)  # a binary file was a UnicodeDecodeError traceback
        if not isinstance(raw, dict):  # 5 or null was a TypeError traceback
            raise InputError(f"expected a JSON object, got {type(raw).__name__}", source=str(path))
        values = {}
        for f in fields(cls):
            if f.name not in raw:
                if f.name == "notes":
                    continue
                raise InputError(f"missing field '{f.name}'", source=str(path))
            v = raw[f.name]
            want = f.type if isinstance(f.type, str) else f.type.__name__
            ok = {
                "str": isinstance(v, str), "bool": isinstance(v, bool),
                "int": isinstance(v, int) and not isinstance(v, bool),
                "float": isinstance(v, (int, float)) and not isinstance(v, bool),
                "tuple[float, ...]": isinstance(v, list) and all(isinstance(x, (int, float)) for x in v),
                "tuple[str, ...]": isinstance(v, list) and all(isinstance(x, str) for x in v),
            }[want]
            if not ok:
                raise InputError(f"field '{f.name}' should be {want}, found {v!r}", source=str(path))
            if want == "float":
                v = float(v)
            elif want == "tuple[float, ...]":
                v = tuple(float(x) for x in v)
            elif want.startswith("tuple"):
                v = tuple(v)
            values[f.name] = v
        if values["importer"] not in IMPORTERS:
            raise InputError(f"unknown importer '{values['importer']}'", source=str(path))
        return cls(**values)


@dataclass(frozen=True, eq=False)
class ProfileSet:
    """One shipped data set: its meta and validated solo / co-run tables (corun None when absent)."""

    name: str
    meta: DatasetMeta
    solo: pd.DataFrame
    corun: pd.DataFrame | None
    path: Path

    @property
    def models(self) -> list[str]:
        """Models with solo rows, sorted."""
        return sorted(self.solo["model"].unique())


def read_solo_csv(path: str | os.PathLike[str], *, require_latency: bool = True) -> pd.DataFrame:
    """Read and validate a solo.csv (exact float round trip; a ragged row is an error naming it)."""
    return validate_solo(read_headed(path, SOLO_COLUMNS), str(path), require_latency=require_latency)


def read_corun_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a corun.csv (exact float round trip; a ragged row is an error naming it)."""
    return validate_corun(read_headed(path, CORUN_COLUMNS), str(path))


def list_datasets() -> list[str]:
    """Names of the shipped data sets (folders of data/profiles with a meta.json), sorted."""
    root = data_dir() / "profiles"
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file()) if root.is_dir() else []


@functools.lru_cache(maxsize=32)
def _load(name: str, root: str) -> ProfileSet:
    return _load_folder(Path(root) / "profiles" / name, check_name=True)


def _load_folder(folder: Path, check_name: bool) -> ProfileSet:
    name = folder.name
    meta = DatasetMeta.from_json(folder / "meta.json")
    if check_name and meta.name != name:
        raise InputError(f"meta.json names '{meta.name}', folder is '{name}'", source=str(folder / "meta.json"))
    solo = read_solo_csv(folder / "solo.csv", require_latency=meta.has_latency)
    corun = read_corun_csv(folder / "corun.csv") if (folder / "corun.csv").is_file() else None
    for table, col in ((solo, "device"), (solo, "mechanism")):
        other = set(table[col]) - {getattr(meta, col)}
        if other:
            raise InputError(f"{col} {sorted(other)} differs from meta.json's '{getattr(meta, col)}'",
                             source=str(folder / "solo.csv"))
    log.debug("loaded data set %s: %d solo, %d corun rows", name, len(solo), 0 if corun is None else len(corun))
    return ProfileSet(name, meta, solo, corun, folder)


def load_profile_dir(folder: str | os.PathLike[str]) -> ProfileSet:
    """A profile folder of the dataset layout (meta.json, solo.csv, optional corun.csv), e.g. one that `stsched
    profile --out DIR` just measured or `stsched import ... --out DIR` wrote (not cached)."""
    folder = Path(folder)
    if not (folder / "meta.json").is_file():
        raise InputError("not a profile folder (no meta.json): measure one with `stsched profile --out DIR` or "
                         "convert one with `stsched import`", source=str(folder))
    return _load_folder(folder, check_name=False)


def resolve_profile(name_or_dir: str | os.PathLike[str]) -> ProfileSet:
    """A shipped data set by name, or a profile folder by path."""
    text = str(name_or_dir)
    if text in list_datasets():
        return load_profile(text)
    if Path(text).is_dir():
        return load_profile_dir(text)
    raise InputError(f"unknown data set or profile folder '{text}' (shipped: {', '.join(list_datasets())})")


def load_profile(name: str) -> ProfileSet:
    """A shipped data set by name (validated, cached; the tables returned are copies).

    Unknown names raise InputError listing the known ones.
    """
    known = list_datasets()
    if name not in known:
        raise InputError(f"unknown data set '{name}' (known: {', '.join(known) or 'none'}; data folder "
                         f"{data_dir()})")
    ps = _load(name, str(data_dir()))
    return ProfileSet(ps.name, ps.meta, ps.solo.copy(),
                      None if ps.corun is None else ps.corun.copy(), ps.path)


def rebuild_dataset(name: str, out_dir: str | os.PathLike[str] | None = None) -> dict:
    """Re-run the data set's importer on its raw/ copies (meta.json: importer, raw_inputs).

    Writes solo.csv / corun.csv into `out_dir` (default: the data set's own folder) and returns the summary
    of `run_import`.
    """
    if name not in list_datasets():
        raise InputError(f"unknown data set '{name}' (known: {', '.join(list_datasets())})")
    folder = data_dir() / "profiles" / name
    meta = DatasetMeta.from_json(folder / "meta.json")
    summary = run_import(meta.importer, [str(folder / p) for p in meta.raw_inputs], str(out_dir or folder))
    _load.cache_clear()
    return summary


@functools.lru_cache(maxsize=4)
def _models(root: str) -> pd.DataFrame:
    path = Path(root) / "models.csv"
    df = read_headed(path, MODELS_COLUMNS)
    for col in ("params_millions", "weights_mb", "gpulet_mem_mb"):
        num, nonnum = to_float(df[col])
        bad = nonnum | (num <= 0) | (num.isna() & (col != "gpulet_mem_mb"))
        df[col] = num
        if bad.any():
            rows = ", ".join(str(i + 1) for i in df.index[bad][:5])
            raise InputError(f"column '{col}' must be a number > 0 in data rows {rows}", source=str(path))
    dup = df["model"].duplicated()
    if dup.any():
        raise InputError(f"model repeated in data rows {', '.join(str(i + 1) for i in df.index[dup][:5])}",
                         source=str(path))
    return df[list(MODELS_COLUMNS)].set_index("model", drop=False)


def load_models() -> pd.DataFrame:
    """`data/models.csv` (model, params_millions, weights_mb, source, gpulet_mem_mb), indexed by model."""
    return _models(str(data_dir())).copy()


def model_weights_mb(model: str) -> float:
    """fp32 weight size of `model` in MB (MiB, 2**20 bytes); unknown model -> InputError listing the known."""
    df = _models(str(data_dir()))
    key = model.strip().lower()
    if key not in df.index:
        raise InputError(f"unknown model '{model}' (known: {', '.join(sorted(df.index))})",
                         source=str(data_dir() / "models.csv"))
    return float(df.at[key, "weights_mb"])


def list_traces() -> list[str]:
    """Names of the shipped request traces (folders of data/traces), sorted."""
    root = data_dir() / "traces"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def trace_dir(name: str) -> Path:
    """Folder of a shipped request trace; unknown names raise InputError listing the known ones."""
    known = list_traces()
    if name not in known:
        raise InputError(f"unknown trace '{name}' (known: {', '.join(known) or 'none'})")
    return data_dir() / "traces" / name


__all__ = [
    "DATA_DIR", "DatasetMeta", "ProfileSet", "SOLO_COLUMNS", "CORUN_COLUMNS", "data_dir", "list_datasets",
    "load_profile", "load_profile_dir", "resolve_profile", "rebuild_dataset", "read_solo_csv", "read_corun_csv", "load_models", "model_weights_mb",
    "list_traces", "trace_dir",
]
