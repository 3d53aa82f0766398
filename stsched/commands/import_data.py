"""`stsched import SOURCE PATH... --out DIR`: convert files in a source's original format into the profile schema.

Imports never mix: a folder that holds another import's tables is refused unless `--fresh` (which replaces them);
importing the same files again replaces the folder's own tables.
"""

from __future__ import annotations

from stsched.commands._common import print_json
from stsched.data.importers import IMPORTERS, run_import
from stsched.outputs import output_folder


def add(sub) -> None:
    p = sub.add_parser("import", help="import profiles from a published source format",
                       description="Convert a published source's files into the profile schema (solo.csv, "
                                   "corun.csv).  Sources: "
                                   + "; ".join(f"{k}: {v.description}" for k, v in IMPORTERS.items()))
    p.add_argument("source", choices=sorted(IMPORTERS), help="source format")
    p.add_argument("paths", nargs="+", help="the source's files, in its original layout")
    p.add_argument("--out", required=True, help="folder to write solo.csv / corun.csv into")
    p.add_argument("--fresh", action="store_true",
                   help="replace the tables of another import that --out holds (refused otherwise)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    output_folder(args.out, inputs=args.paths)
    summary = run_import(args.source, list(args.paths), args.out, fresh=args.fresh)
    if args.json:
        print_json(summary)
        return 0
    print(f"imported {summary['source']} -> {summary['out_dir']}: {summary['solo_rows']} solo rows, "
          f"{summary['corun_rows']} co-run rows, {summary['skipped_rows']} skipped; models "
          f"{', '.join(summary['models']) or '-'}; wrote {', '.join(summary['written']) or 'nothing'}")
    return 0
