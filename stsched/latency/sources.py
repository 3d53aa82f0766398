"""Reading measurement files for `stsched evaluate-model`: detect the layout from the file's shape, then parse
it with the importers of `stsched.data.importers` (never re-parsed here).

| source | shape | read by |
|---|---|---|
| `gpulet-a100-interference` | headerless, 10 fields, `throughput`/`latency` at 6/8 | `import_gpulet_a100` |
| `gpulet-a100-inference` | headerless, 8 fields, `throughput`/`latency` at 4/6 | `import_gpulet_a100` |
| `igniter-pairs` | header `model1,model2,batch1,batch2,mps_pct1,mps_pct2,latency1_ms,latency2_ms` | `import_igniter` |
| `igniter-solo` | header `model,batch,mps_pct,latency_ms,...` | `import_igniter` |
| `igniter-config` | JSON lines (iGniter's gpulet.config) | `import_igniter` |
| `parvagpu` | header `Mig instance,Batch size,Workload Number,Throughput,Latency` | `import_parvagpu` |
| `corun-csv` / `solo-csv` | the project's long schema | `loaders.read_corun_csv` / `read_solo_csv` |

The gpulet and iGniter importers take a co-run file only together with a solo file; for a co-run-only file a
one-row placeholder solo file is written to a temporary folder and its solo output discarded.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import pandas as pd

from stsched.data import importers as imp
from stsched.data.schema import CORUN_COLUMNS, SOLO_COLUMNS
from stsched.errors import InputError

SOURCES = ("gpulet-a100-interference", "gpulet-a100-inference", "igniter-pairs", "igniter-solo", "igniter-config",
           "parvagpu", "corun-csv", "solo-csv")


def _first_row(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", source=str(path)) from None
    if head.lstrip().startswith("{"):
        return ["{json}"]
    for row in csv.reader(head.splitlines()):
        if any(f.strip() for f in row):
            return [f.strip().lower() for f in row]
    raise InputError("empty file", source=str(path))


def detect_source(path: str | os.PathLike[str]) -> str:
    """The source layout of a measurement file, from its first row."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", source=str(path))
    row = _first_row(p)
    cols = set(row)
    if row == ["{json}"]:
        return "igniter-config"
    if len(row) == 10 and row[5] == "throughput" and row[7] == "latency":
        return "gpulet-a100-interference"
    if len(row) == 8 and row[3] == "throughput" and row[5] == "latency":
        return "gpulet-a100-inference"
    if {c.lower() for c in imp._IGN_PAIRS} <= cols:
        return "igniter-pairs"
    if set(CORUN_COLUMNS) <= cols:
        return "corun-csv"
    if set(SOLO_COLUMNS) <= cols:
        return "solo-csv"
    if {c.lower() for c in imp._IGN_SOLO[:4]} <= cols:
        return "igniter-solo"
    if {c.lower() for c in imp._PARVA} <= cols:
        return "parvagpu"
    raise InputError(f"cannot tell the layout from the first row ({len(row)} fields: {', '.join(row[:10])}); "
                     f"pass --source (one of {', '.join(SOURCES)})", source=str(path))


def read_measurements(path: str | os.PathLike[str], source: str | None = None
                      ) -> tuple[str, pd.DataFrame | None, pd.DataFrame | None]:
    """(source, solo, corun) of a measurement file; the layout is detected unless `source` is given."""
    from stsched.data.loaders import read_corun_csv, read_solo_csv

    src = source or detect_source(path)
    if src not in SOURCES:
        raise InputError(f"unknown source {src!r} (known: {', '.join(SOURCES)})")
    with tempfile.TemporaryDirectory(prefix="stsched-eval-") as tmp:
        if src == "gpulet-a100-interference":
            ph = Path(tmp) / "inference.csv"
            ph.write_text("placeholder,1,100,throughput,1,latency,1,1\n")
            return src, None, imp.import_gpulet_a100(ph, None, path).corun
        if src == "gpulet-a100-inference":
            return src, imp.import_gpulet_a100(path).solo, None
        if src == "igniter-pairs":
            ph = Path(tmp) / "solo.csv"
            ph.write_text(",".join(imp._IGN_SOLO) + "\nplaceholder,1,100,1,1000,1,1\n")
            return src, None, imp.import_igniter(ph, path).corun
        if src in ("igniter-solo", "igniter-config"):
            res = imp.import_igniter(path)
            return src, res.solo, res.corun
        if src == "parvagpu":
            return src, imp.import_parvagpu(path).solo, None
        if src == "corun-csv":
            return src, None, read_corun_csv(path)
        return src, read_solo_csv(path), None
