"""What every experiment script shares: its declaration (`Study`), one argument block (`study_args`), a results
folder, atomic resumable CSV rows written by the driver (`run_grid`), a printed table.

Experiment scripts declare their grid as data, call `run_grid`, and never re-implement library logic.  Where the
points run (serially, in a local process pool, on Ray) is decided in one place, `experiments.runners`, from the
shared flags `--runner/--jobs/--address/--threads`; rows are written to `results/<experiment>/rows.csv` by the
driver only, atomically, so an interrupted run resumes where it stopped: rows whose key columns are already present
are skipped (those with a `run_error` are retried).  Every study module declares `STUDY = Study(...)` (see `Study`)
and so appears in `stsched experiment --list` and runs as `stsched experiment NAME`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import errno
import fcntl
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from tqdm import tqdm

from experiments.runners import RUN_ERROR, RUNNERS, Runner, execute
from stsched import validate as V
from stsched.errors import InputError
from stsched.io import write_atomic

log = logging.getLogger(__name__)

FLUSH_S = 0.25  # run_grid rewrites the results file at most this often (and once at the end)
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
        raise SystemExit(f"error: {path} does not exist; run the study without --plot-only first")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class Study:
    """What `stsched experiment --list` says of a study.  Every module of experiments/ that is a study declares,
    at module level and with literal arguments (the list is read from the source, nothing is imported):

        STUDY = Study("exact_gpulet", "proven optima on gpulet's mixes vs gpulet", typical="20 min")

    and has `main(argv)` that parses its arguments with `study_args`.  `name` is the module name (what
    `stsched experiment NAME` runs); `results` the folder under the results root when it is not `name`;
    `needs_gpu`: its full run needs a GPU (`--quick` then runs its CPU path); `quick`: what `--quick` runs.
    A new study (e.g. experiments/scale_eval.py) is found once it declares its STUDY; no list to update."""

    name: str
    summary: str
    typical: str = "?"
    needs_gpu: bool = False
    results: str = ""
    quick: str = "a reduced grid"

    @property
    def folder(self) -> str:
        return self.results or self.name


def studies() -> list[Study]:
    """Every study declared in experiments/ (module-level `STUDY = Study(...)`), by name."""
    out = []
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(), str(path))
        except SyntaxError:  # pragma: no cover - a broken module is the import's error to report
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "STUDY"
                                                     for t in node.targets)
                    and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "Study"):
                args = [ast.literal_eval(a) for a in node.value.args]
                kw = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords if k.arg}
                study = Study(*args, **kw)
                if study.name != path.stem:
                    raise ValueError(f"{path.name}: STUDY name {study.name!r} is not the module name")
                out.append(study)
    return out


_RUNNER = Runner()


def set_runner(runner: Runner) -> None:
    """The runner that `run_grid` uses when it is not given one (set by `study_args` from the shared flags)."""
    global _RUNNER
    _RUNNER = runner


def current_runner() -> Runner:
    return _RUNNER


def study_args(ap: argparse.ArgumentParser, argv: list[str] | None, *, quick: str | None = None,
               grid: bool = True) -> argparse.Namespace:
    """The one argument block every study shares, added to its parser: `--quick`, `--fresh`, `--plot-only`,
    `--runner local|ray`, `--jobs N`, `--address ADDR`, `--threads N`, `--out DIR`; parses the arguments (a bad
    one: one line on stderr, exit 2, as every stsched command; argparse printed its usage first), sets up
    logging and the runner of `run_grid` (STSCHED_RUNNER, STSCHED_JOBS, STSCHED_ADDRESS give a grid study's
    defaults; a study without a grid does not read them).
    A study that runs no grid of points and keeps no rows (`grid=False`) refuses --runner ray, --jobs, --address,
    --plot-only and --fresh: they would be ignored (`stsched experiment sim_memory --plot-only` ran the whole
    measurement).  `--runner ray` without Ray installed is refused before any point runs (`Runner`)."""
    g = ap.add_argument_group("shared by every study (stsched experiment)")
    g.add_argument("--quick", action="store_true", help=quick or "a reduced grid, same code path (minutes)")
    g.add_argument("--fresh", action="store_true", help="discard earlier rows and recompute them")
    g.add_argument("--plot-only", action="store_true", help="redraw the plots/summary from rows.csv, run nothing")
    g.add_argument("--runner", choices=RUNNERS, default=None,
                   help="where grid points run: local processes or Ray tasks (default $STSCHED_RUNNER or local)")
    g.add_argument("--jobs", type=V.count, default=None,
                   help="grid points at a time (local workers; a local Ray instance's CPUs; default $STSCHED_JOBS "
                        "or 1)")
    g.add_argument("--address", default=None,
                   help="a Ray cluster: auto or HOST:PORT (--runner ray; default: a local Ray instance)")
    g.add_argument("--threads", type=V.threads, default=1,
                   help="solver/BLAS threads per grid point (1 to 1024; default 1)")
    g.add_argument("--out", default=None, help="results root: DIR/<study>/ (default $STSCHED_RESULTS or results/)")
    ap.error = lambda message: ap.exit(2, f"{ap.prog}: error: {(message or 'bad arguments').splitlines()[0]}\n")
    args = ap.parse_args(argv)
    # the $STSCHED_* defaults are a grid's, read here (a bad value was a ValueError traceback while the parser was
    # built); a study without a grid read them too and refused a valid STSCHED_JOBS=2 as "--jobs: ... ignored"
    env = os.environ if grid else {}
    args.runner = args.runner or env.get("STSCHED_RUNNER") or "local"
    args.address = args.address or env.get("STSCHED_ADDRESS") or None
    if args.jobs is None:
        try:
            args.jobs = V.check_int(env.get("STSCHED_JOBS", "1"), "$STSCHED_JOBS", minimum=1)
        except InputError as e:
            ap.error(str(e))
    if args.plot_only and args.fresh:  # --fresh would be ignored: nothing is run, the old rows are plotted
        ap.error("--plot-only redraws the rows an earlier run wrote; --fresh (discard them) contradicts it")
    ignored = ([] if grid else [f for f, on in (("--runner ray", args.runner != "local"), ("--jobs", args.jobs != 1),
                                                   ("--address", bool(args.address)), ("--plot-only", args.plot_only),
                                                   ("--fresh", args.fresh)) if on])
    if ignored:
        ap.error(f"{', '.join(ignored)}: this study runs no grid of points and keeps no rows: "
                 f"{'they' if len(ignored) > 1 else 'it'} would be ignored")
    from stsched.outputs import output_folder

    # the results root checked before any point runs (an unwritable --out was an OSError traceback, exit 1)
    output_folder(args.out or results_root(), what="--out" if args.out else "results folder ($STSCHED_RESULTS)")
    if args.out:
        os.environ["STSCHED_RESULTS"] = os.path.abspath(args.out)
    logging.basicConfig(level=logging.INFO if os.environ.get("STSCHED_VERBOSE") else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        set_runner(Runner(args.runner, args.jobs, args.address, args.threads))
    except ValueError as e:
        ap.error(str(e))
    return args


def instance_arg(ap: argparse.ArgumentParser) -> None:
    """The optional INSTANCE positional of a study on one instance (`instance_or_quick`)."""
    ap.add_argument("instance", nargs="?", default=None, help="instance JSON (required unless --quick)")


def instance_or_quick(ap: argparse.ArgumentParser, args: argparse.Namespace):
    """The instance of a study on one instance: with --quick a random 16-service A100 MPS instance (seed 7), else
    the INSTANCE JSON (bad input: one line, exit 2, before any work); neither: a usage error.  The caller sets its
    own --quick limits."""
    from stsched.io import load_instance
    from stsched.scenarios import random_instance
    if args.quick:
        return random_instance(16, 8, 7, arrivals="deterministic")
    if args.instance is None:
        ap.error("an instance JSON is required (or --quick)")
    return load_instance(args.instance)


def refuse_ignored(ap: argparse.ArgumentParser, args: argparse.Namespace, dests: Sequence[str], singular: str,
                   plural: str) -> None:
    """Options among `dests` given with other than their defaults would be ignored by this run: one line naming
    them, exit 2, before any point runs (`singular` / `plural` say why, e.g. "an option of --integrality" /
    "options of --integrality")."""
    given = [f"--{d.replace('_', '-')}" for d in dests if getattr(args, d) != ap.get_default(d)]
    if given:
        ap.error(f"{', '.join(given)}: {plural if len(given) > 1 else singular}")


#: the exact solvers a study names by engine: (registered solver, its engine)
EXACT_ENGINES = {"cbc": ("milp", "cbc"), "highs": ("milp", "highs"), "cpsat": ("cpsat", None)}


def listed(ap: argparse.ArgumentParser, flag: str, text: str, parse: Callable[[str], object] = str,
           known: Sequence[str] | None = None) -> list:
    """A comma-separated option (`--engines cbc,highs`): each item one of `known` and/or parsed by `parse` (raising
    InputError or ValueError); an empty item, a bad one or one given twice is one line naming the flag (exit 2),
    before any point runs (a bad item failed every point, then the summary was a traceback)."""
    out: list = []
    for item in (t.strip() for t in text.split(",")):
        if known is not None and item not in known:
            ap.error(f"argument {flag}: unknown {item!r} (known: {', '.join(known)})")
        try:
            value = parse(item)
        except (InputError, ValueError) as e:
            ap.error(f"argument {flag}: {item!r}: {str(e) or 'not understood'}")
        if value in out:
            ap.error(f"argument {flag}: {item!r} given twice")
        out.append(value)
    return out


def run_study(main: Callable[[], int]) -> int:
    """`python -m experiments.X`: run the study's `main` with the exit codes and the one line on stderr of every
    stsched command (`stsched.cli.run_parsed`: bad input 2, interrupted 130, SIGTERM 143), not a traceback."""
    from stsched.cli import run_parsed

    spec = getattr(main, "__globals__", {}).get("__spec__")  # run with -m the module is __main__, its spec the study
    code = getattr(main, "__code__", None)  # run as a script (`python experiments/X.py`): no spec, the file's name
    name = (spec.name if spec is not None else Path(code.co_filename).stem
            if main.__module__ == "__main__" and code is not None else main.__module__).rsplit(".", 1)[-1]
    try:
        return run_parsed(argparse.Namespace(run=lambda _args: main()), interrupted=f"{name}: interrupted",
                          terminated=f"{name}: terminated")
    finally:
        release_folders()


def redraw(experiment: str, plot: Callable[[list[dict[str, str]]], Sequence[Path]]) -> int:
    """`--plot-only`: the plots of `experiment` redrawn from its rows; prints their paths."""
    print("\n".join(map(str, plot(read_rows(experiment)))))
    return 0


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a results file.  A last row cut short (a file that does not end with a newline, or a
    row with fewer cells than the header: copied or restored while being written) is dropped with a warning, so
    that a resumed run runs its point again instead of keeping a truncated value as done."""
    if not path.exists():
        return [], []
    with open(path, newline="") as f:
        text = f.read()
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    if rows and (not text.endswith("\n") or None in rows[-1].values()):
        log.warning("%s: its last row is cut short (%s); dropped, its point runs again", path,
                    ",".join(v for v in rows[-1].values() if v is not None)[:80])
        rows.pop()
    return list(reader.fieldnames or []), rows


def _text(v: object) -> str:
    return "" if v is None else str(v)


def _write_rows(path: Path, header: Sequence[str], rows: Sequence[Mapping[str, object]]) -> None:
    """The whole file, atomically: a reader (or a resumed run after a kill) sees the old rows or the new ones."""
    columns = list(header)
    for r in rows:
        columns += [k for k in r if k not in columns]
    if RUN_ERROR in columns and not any(r.get(RUN_ERROR) for r in rows):
        columns.remove(RUN_ERROR)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _text(v) for k, v in r.items()} for r in rows)
    write_atomic(path, buf.getvalue())


_HELD: dict[str, object] = {}  # results folder (resolved) -> the open lock file of this process's hold on it
LOCK = ".lock"  # in a study's results folder: the pid of the run that writes it


def hold_folder(folder: Path) -> None:
    """This process writes the study results folder `folder` until the study ends (`release_folders`, called by
    `run_study` and `stsched experiment`) or the process dies: a second run into the same folder at the same time
    is refused (InputError, one line naming the folder and the holder's pid), before it runs a point or --fresh
    deletes a file.  One hold for the whole study, not one per results file: a study that writes rows.csv and
    then needs.csv (adapt_frontier), or bounds.csv then solves.csv (scale_eval), let a second run into a file the
    first had finished (with --fresh, deleting it first).  Each driver rewrites the whole file from the rows it
    read at its start, so two at once lost each other's rows.  An advisory POSIX lock on FOLDER/.lock, the
    process's own (the workers it forks do not inherit it, where a `flock` lock stayed held by a pool's worker
    after the run), released by the system when the holder dies (SIGKILL included); held once per process (a
    second hold of the same folder is a no-op: closing a second descriptor of the file would release the lock)."""
    key = os.path.realpath(folder)
    if key in _HELD:
        return
    f = open(os.path.join(key, LOCK), "a+")
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EAGAIN):  # a file system without locks: on, unguarded
            log.warning("%s: cannot lock it (%s): a second run into it at the same time would lose rows", folder,
                        e.strerror or e)
        else:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise InputError(f"{folder}: another run (pid {holder}) is writing this study's results; wait for it "
                             f"to end or give another --out") from None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    _HELD[key] = f


def release_folders() -> None:
    """The end of a study: the folders it held (`hold_folder`) let go."""
    while _HELD:
        _HELD.popitem()[1].close()


@contextlib.contextmanager
def one_writer(folder: Path):
    """`hold_folder` for a block: held while it runs (released at its end unless this process held it before)."""
    held = os.path.realpath(folder) in _HELD
    hold_folder(folder)
    try:
        yield
    finally:
        if not held:
            f = _HELD.pop(os.path.realpath(folder), None)
            if f is not None:
                f.close()


def start_order(points: Sequence[Mapping[str, object]], todo: list[int], runner: Runner,
                cost: Callable[[Mapping[str, object]], float] | None) -> list[int]:
    """The order in which the points `todo` (indexes into `points`) are started: grid order, or with more than
    one worker and a `cost`, decreasing cost (longest processing time first; grid order among equal costs)."""
    if cost is None or (runner.kind == "local" and runner.jobs == 1):
        return todo
    return sorted(todo, key=lambda i: -float(cost(points[i])))


RUN_ERROR_CELL = "run error"  # the summary cell of a point that failed to run (kept in rows.csv, retried next run)


def completed(rows: Iterable[Mapping[str, object]]) -> list:
    """The rows of the points that ran: a point that failed to run has no result to draw."""
    return [d for d in rows if not d.get(RUN_ERROR)]


def run_grid(experiment: str, points: Iterable[Mapping[str, object]], key_cols: Sequence[str],
             fn: Callable[[Mapping[str, object]], Mapping[str, object]], *, fresh: bool = False,
             filename: str = "rows.csv", runner: Runner | None = None,
             cost: Callable[[Mapping[str, object]], float] | None = None) -> list[dict[str, str]]:
    """Evaluate `fn` on every grid point not already in the results file; return all rows (old and new).

    Points run where `runner` (default: the one `study_args` set, else serial in this process) puts them; the
    driver alone writes the file, rewriting it atomically as rows arrive (at most every FLUSH_S seconds), with
    the rows of this grid in grid order after rows of other grids, so that a run killed at any moment (SIGINT
    or SIGKILL) resumes without losing or doubling a row.  A point whose `fn` raised (or whose worker died) is
    kept as a row with the one-line error in column `run_error` and is run again by the next run; an `error`
    column that `fn` itself returns is a result like any other and is kept.

    `cost` (optional): an estimate of a point's work (e.g. its number of services).  With more than one worker
    the points are started in decreasing order of it (longest processing time first), so that the last big point
    does not run alone on one worker while the others idle; the rows are still written in grid order."""
    path = results_dir(experiment) / filename
    hold_folder(path.parent)  # the whole study's, before its first point and before --fresh deletes a file
    return _run_grid(path, points, key_cols, fn, fresh, runner or _RUNNER, cost)


def _run_grid(path: Path, points: Iterable[Mapping[str, object]], key_cols: Sequence[str],
              fn: Callable[[Mapping[str, object]], Mapping[str, object]], fresh: bool, runner: Runner,
              cost: Callable[[Mapping[str, object]], float] | None) -> list[dict[str, str]]:
    if fresh and path.exists():
        path.unlink()
    header, old = _read(path)
    points = list(points)
    key = lambda r: tuple(_text(r.get(k, "")) for k in key_cols)  # noqa: E731
    grid_keys = [key(p) for p in points]
    in_grid = set(grid_keys)
    done = {key(r): r for r in old if key(r) in in_grid and not r.get(RUN_ERROR)}
    others = [r for r in old if key(r) not in in_grid]
    failed = {key(r): r for r in old if key(r) in in_grid and r.get(RUN_ERROR)}
    todo = start_order(points, [i for i, k in enumerate(grid_keys) if k not in done], runner, cost)
    log.info("%s: %d points, %d already done (%s)", path, len(points), len(points) - len(todo),
             runner.describe())
    rows: dict[tuple[str, ...], Mapping[str, object]] = {**failed, **done}

    def flush() -> None:
        _write_rows(path, header, others + [rows[k] for k in dict.fromkeys(grid_keys) if k in rows])

    last = time.monotonic()
    bar = tqdm(total=len(todo), desc=path.parent.name, disable=None)
    try:
        for i, out in execute(runner, fn, [points[i] for i in todo]):
            point = points[todo[i]]
            clash = [k for k in key_cols if k in out and _text(out[k]) != _text(point[k])]
            if clash:  # the row would no longer match its point, and a resumed run would redo it forever
                raise ValueError(f"{path}: a point's result changes its key column(s) {', '.join(clash)}")
            rows[key(point)] = {**point, **out}
            bar.update(1)
            if time.monotonic() - last >= FLUSH_S:
                flush()
                last = time.monotonic()
    finally:
        bar.close()
        if todo:
            flush()
    errors = sum(1 for k in grid_keys if rows.get(k, {}).get(RUN_ERROR))
    if errors:
        log.warning("%s: %d of %d points failed to run (column %s of %s); the next run retries them",
                    path.parent.name, errors, len(points), RUN_ERROR, path)
    return _read(path)[1]


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A Markdown table of `rows` (floats shown with 4 significant digits)."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(out)
