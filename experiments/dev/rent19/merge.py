"""The frontier study's rows with the new default (issue 18, session 19): results/s18b's rows (static peak, full
re-partitioning, the nine other baseline points and the default before) with each adaptive row replaced by the
`adaptive[compact_off=1]` row of the same window (results/s19k: the 15 judging windows; results/s19dev2: the five
development windows), labelled `adaptive` (the default since), under s18b's columns; then the study's summary and
plots from them:

    python -m experiments.dev.rent19.merge [--results results] [--out DIR]
    python -m experiments.adapt_frontier --out results/s19m --plot-only --time-limit 60 --policies adaptive

Writes DIR/adapt_frontier/rows.csv (default results/s19m).  Reads files only (no solver run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.dev.frontier18.merge_rows import read, write

NEW = "adaptive[compact_off=1]"


def merged(results: Path) -> tuple[list[str], list[dict[str, str]]]:
    columns, base = read(results, "s18b")
    new = {r["offset"]: r for run in ("s19dev2", "s19k") for r in read(results, run)[1] if r["policy"] == NEW}
    rows = [{**new[r["offset"]], "policy": "adaptive"} if r["policy"] == "adaptive" else r for r in base]
    missing = sorted({r["offset"] for r in base if r["policy"] == "adaptive"} - set(new), key=int)
    if missing:
        raise SystemExit(f"error: no {NEW} row for window(s) {', '.join(missing)}")
    return columns, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    columns, rows = merged(args.results)
    write((args.out or args.results / "s19m") / "adapt_frontier" / "rows.csv", columns, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
