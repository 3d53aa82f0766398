"""The `stsched` command line.  Each subcommand lives in its own module under `stsched/commands/`.

Exit codes: 0 success (a valid plan, a solved instance), 1 a verdict against the input (violations, infeasible),
2 bad input (one line on stderr naming the file, field, row or service), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from stsched.errors import InputError

# one module per subcommand group; each has `add(subparsers)` that registers its parsers with `run=...`
COMMAND_MODULES = (
    "stsched.commands.scenario",
    "stsched.commands.check",
    "stsched.commands.import_data",
    "stsched.commands.solve",
    "stsched.commands.bound",
    "stsched.commands.fit",
    "stsched.commands.probe_plan",
    "stsched.commands.simulate",
    "stsched.commands.profile",
    "stsched.commands.demo",
    "stsched.commands.show",
    "stsched.commands.export",
    "stsched.commands.experiment",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stsched", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.run(args) or 0)
    except InputError as e:
        print(f"stsched: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stsched: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
