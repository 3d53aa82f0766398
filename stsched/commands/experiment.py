"""`stsched experiment`: every study of experiments/ as one command.

    stsched experiment --list                       # name, what it measures, typical time, needs a GPU
    stsched experiment NAME [--quick] [--fresh] [--plot-only] [--out DIR] [--runner local|ray] [--jobs N]
                            [--address ADDR] [--threads N] [STUDY-SPECIFIC ARGS...]

NAME is the module name under experiments/ (`python -m experiments.NAME` runs the same `main`).  Studies are found
from their declarations (`STUDY = Study(...)`, experiments.common.Study), read from the source without importing
them; only the study that runs is imported.  Results go to DIR/<folder>/ (DIR: --out, else $STSCHED_RESULTS, else
results/; the folder is NAME unless the study declares another, shown by --list): rows.csv, summary.md, plots.

This command is the top of the tree, like experiments/ itself (tests/arch allows it to import experiments).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from stsched import validate as V
from stsched.errors import InputError


def add(sub) -> None:
    p = sub.add_parser("experiment", help="run a study of experiments/ (--list shows them)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", help="the study (a module of experiments/); see --list")
    p.add_argument("--list", action="store_true", help="list the studies: name, summary, typical time, GPU")
    p.add_argument("--quick", action="store_true", help="a reduced grid, same code path (<= 3 min on 2 cores)")
    p.add_argument("--fresh", action="store_true", help="discard earlier rows")
    p.add_argument("--plot-only", action="store_true", help="redraw plots/summary from the rows, run nothing")
    p.add_argument("--out", default=None, help="results root (default $STSCHED_RESULTS or results/)")
    p.add_argument("--runner", default=None, choices=("local", "ray"), help="where grid points run (default local)")
    p.add_argument("--jobs", type=V.count, default=None, help="grid points at a time (default 1)")
    p.add_argument("--address", default=None, help="a Ray cluster: auto or HOST:PORT (--runner ray)")
    p.add_argument("--threads", type=V.threads, default=None, help="solver/BLAS threads per grid point (default 1)")
    p.add_argument("extra", nargs=argparse.REMAINDER,
                   help="after NAME: the shared flags and the study's own arguments (python -m experiments.NAME -h)")
    p.set_defaults(run=run_experiment)


def _table(studies) -> str:
    rows = [("name", "needs GPU", "typical", "results", "what it measures")]
    rows += [(s.name, "yes" if s.needs_gpu else "no", s.typical, s.folder, s.summary) for s in studies]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


def study_argv(args) -> list[str]:
    """The study's argv: the shared flags given before NAME, then everything after it (a study parses the
    shared block itself, experiments.common.study_args, so flags after NAME reach it unchanged)."""
    argv = [f"--{f.replace('_', '-')}" for f in ("quick", "fresh", "plot_only") if getattr(args, f)]
    for flag in ("runner", "jobs", "address", "threads", "out"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag}", str(getattr(args, flag))]
    extra = list(args.extra or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    return argv + extra


def run_experiment(args) -> int:
    from experiments.common import release_folders, studies

    found = {s.name: s for s in studies()}
    if args.list or not args.name:
        print(_table(found.values()))
        return 0
    study = found.get(args.name)
    if study is None:
        raise InputError(f"experiment: unknown study {args.name!r} (known: {', '.join(sorted(found))})")
    argv = study_argv(args)
    if study.needs_gpu and "--quick" in argv:
        print(f"{study.name} needs a GPU for its full run; --quick runs its CPU path: {study.quick}",
              file=sys.stderr)
    module = importlib.import_module(f"experiments.{study.name}")
    try:
        return int(module.main(argv) or 0)
    except SystemExit as e:  # a study refuses its input with SystemExit("message"): one line, exit 2 here
        if isinstance(e.code, str):
            raise InputError(f"{study.name}: {e.code.removeprefix('error: ')}") from None
        return 0 if e.code is None else int(e.code)  # argparse's refusal (its one line printed) or --help: a code
    finally:
        release_folders()  # the study's results folder (`hold_folder`): another run may write it now
