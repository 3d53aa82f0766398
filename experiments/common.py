"""What every experiment script shares: a results folder, atomic resumable CSV rows, a printed table.

Experiment scripts declare their grid as data, call `run_grid`, and never re-implement library logic.  Rows are
appended to `results/<experiment>/rows.csv` one at a time (flushed), so an interrupted run resumes where it stopped:
rows whose key columns are already present are skipped.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from tqdm import tqdm

from stsched.io import write_atomic

log = logging.getLogger(__name__)

RESULTS = Path(os.environ.get("STSCHED_RESULTS", Path(__file__).resolve().parents[1] / "results"))


def results_root() -> Path:
    """$STSCHED_RESULTS when set (read at every call, so a run or a test can redirect it), else `RESULTS`."""
    return Path(os.environ.get("STSCHED_RESULTS") or RESULTS)


def results_dir(experiment: str) -> Path:
    d = results_root() / experiment
    d.mkdir(parents=True, exist_ok=True)
    return d


def read_rows(experiment: str, filename: str = "rows.csv") -> list[dict[str, str]]:
    """The rows an earlier run wrote; SystemExit with a one-line message when there are none (for --plot-only)."""
    path = results_root() / experiment / filename
    if not path.exists():
        raise SystemExit(f"error: {path} does not exist; run `python -m experiments.{experiment}` first")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def solver_study_args(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`--fresh` and `--plot-only` added to a solver study's parser, its arguments parsed, logging set up."""
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--plot-only", action="store_true", help="redraw the plots from rows.csv, solve nothing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return args


def redraw(experiment: str, plot: Callable[[list[dict[str, str]]], Sequence[Path]]) -> int:
    """`--plot-only`: the plots of `experiment` redrawn from its rows; prints their paths."""
    print("\n".join(map(str, plot(read_rows(experiment)))))
    return 0


def _done_keys(path: Path, key_cols: Sequence[str]) -> set[tuple[str, ...]]:
    if not path.exists():
        return set()
    with open(path, newline="") as f:
        return {tuple(row.get(k, "") for k in key_cols) for row in csv.DictReader(f)}


def run_grid(experiment: str, points: Iterable[Mapping[str, object]], key_cols: Sequence[str],
             fn: Callable[[Mapping[str, object]], Mapping[str, object]], *, fresh: bool = False,
             filename: str = "rows.csv") -> list[dict[str, str]]:
    """Evaluate `fn` on every grid point not already in the results file; return all rows (old and new)."""
    path = results_dir(experiment) / filename
    if fresh and path.exists():
        path.unlink()
    done = _done_keys(path, key_cols)
    points = list(points)
    todo = [p for p in points if tuple(str(p[k]) for k in key_cols) not in done]
    log.info("%s: %d points, %d already done", experiment, len(points), len(points) - len(todo))
    header = _header(path)
    for point in tqdm(todo, desc=experiment, disable=None):
        out = fn(point)
        clash = [k for k in key_cols if k in out and str(out[k]) != str(point[k])]
        if clash:  # the row would no longer match its point, and a resumed run would redo it forever
            raise ValueError(f"{experiment}: a point's result changes its key column(s) {', '.join(clash)}")
        header = _append_row(path, {**point, **out}, header)
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _header(path: Path) -> list[str]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def _append_row(path: Path, row: Mapping[str, object], header: list[str]) -> list[str]:
    """Append `row` to the CSV at `path` whose columns are `header` ([] when there is no file yet); when the row
    brings columns the file lacks (an error row among full ones, or the other way round), the file is first
    rewritten atomically under the union of the columns.  Returns the file's columns."""
    columns = header + [k for k in row if k not in header]
    if header and columns != header:
        with open(path, newline="") as f:
            old = list(csv.DictReader(f))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(old)
        write_atomic(path, buf.getvalue())
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        if not header:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())
    return columns


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A Markdown table of `rows` (floats shown with 4 significant digits)."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(out)
