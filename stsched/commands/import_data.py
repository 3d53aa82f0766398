"""`stsched import SOURCE PATH... --out DIR`: convert files in a source's original format into the profile schema."""

from __future__ import annotations

from stsched.data.importers import IMPORTERS, run_import


def add(sub) -> None:
    p = sub.add_parser("import", help="import profiles from a published source format",
                       description="sources: " + "; ".join(f"{k}: {v.description}" for k, v in IMPORTERS.items()))
    p.add_argument("source", choices=sorted(IMPORTERS), help="source format")
    p.add_argument("paths", nargs="+", help="the source's files, in its original layout")
    p.add_argument("--out", required=True, help="folder to write solo.csv / corun.csv into")
    p.set_defaults(run=run)


def run(args) -> int:
    summary = run_import(args.source, list(args.paths), args.out)
    print(", ".join(f"{k}: {v}" for k, v in summary.items()))
    return 0
