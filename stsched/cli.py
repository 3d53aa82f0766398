"""The `stsched` command line.  Each subcommand lives in its own module under `stsched/commands/`.

Exit codes: 0 success (a valid plan, a solved instance), 1 a verdict against the input (violations, infeasible),
2 bad input (one line on stderr naming the file, field, row or service), 130 interrupted (143 on SIGTERM), 141
when stdout was closed early (a pipe into `head`: quiet, no traceback).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import logging
import os
import re
import signal
import sys
import time

from stsched.errors import InputError, InvalidPlanError, SolverFailed, Terminated, machine_limit, note_interrupt

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


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (unless the text already names it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.help is argparse.SUPPRESS or "default" in text or "%(default)" in text:
            return text
        d = action.default
        if d is None or d is False or d is argparse.SUPPRESS or d == [] or action.required:
            return text
        if action.option_strings and action.nargs != 0:
            return f"{text} (default %(default)s)" if text else "(default %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `stsched: error: solve: argument --seed: ...`, exit 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse's hook
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        line = message.splitlines()[0] if message else "bad arguments"
        self.exit(2, f"stsched: error: {command + ': ' if command else ''}{line}\n")


def _children() -> list[int]:
    """The process ids whose parent is this process (Linux /proc; elsewhere none)."""
    me, out = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and int(fields[1]) == me:
            out.append(int(name))
    return out


def _stop_children(timeout_s: float = 5.0) -> None:
    """Stop the processes this one started (a MILP engine such as cbc) and wait for them, so that the temporary
    folders they write into can be removed once the interrupt unwinds the stack."""
    pids = _children()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    end = time.monotonic() + timeout_s
    while pids and time.monotonic() < end:
        for pid in list(pids):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pids.remove(pid)
        if pids:
            time.sleep(0.02)


def _on_sigterm(signum, frame) -> None:
    note_interrupt("terminate")
    _stop_children()
    raise Terminated()


def _on_sigint(signum, frame) -> None:
    note_interrupt()
    _stop_children()
    raise KeyboardInterrupt()


def _describe(parser: argparse.ArgumentParser) -> None:
    """Every subcommand has a description (its help line when it has none) and the defaults formatter."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                sub.formatter_class = HelpFormatter
                if not sub.description and helps.get(name):
                    sub.description = helps[name][0].upper() + helps[name][1:] + "."
                _describe(sub)


def _global_flags_after(parser: argparse.ArgumentParser) -> None:
    """`-q/--quiet`, `-v/--verbose` and `--version` also after the command name (`stsched solve I.json -q`), on
    every subcommand that does not define the option itself.  Defaults are suppressed, so a flag not given after
    the command leaves the one given before it alone; `-v` counts in its own field, added to the global count in
    `main` (`stsched -v solve I.json -v` is -vv)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in action.choices.values():
            taken = sub._option_string_actions
            if not {"-q", "--quiet"} & taken.keys():
                sub.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                                 help="as `stsched -q COMMAND`: no progress bars or progress lines on stderr")
            if not {"-v", "--verbose"} & taken.keys():
                sub.add_argument("-v", "--verbose", action="count", dest="verbose_after", default=argparse.SUPPRESS,
                                 help="as `stsched -v COMMAND`: more logging (-vv for debug)")
            if "--version" not in taken:
                sub.add_argument("--version", action="version", version=_version_line())
            _global_flags_after(sub)


def _lift_global_flags(args: argparse.Namespace) -> bool:
    """The global flags among a command's pass-through words (`stsched experiment NAME ... -q`: argparse's REMAINDER
    takes every word after NAME, so `_global_flags_after`'s options never saw them and the study refused -q) are
    the global flags; words after `--` stay the study's.  True when --version was among them."""
    extra = getattr(args, "extra", None)
    if not extra:
        return False
    cut = extra.index("--") if "--" in extra else len(extra)
    keep, version = [], False
    for word in extra[:cut]:
        if word in ("-q", "--quiet"):
            args.quiet = True
        elif word == "--verbose" or re.fullmatch(r"-v+", word):
            args.verbose_after = getattr(args, "verbose_after", 0) + (1 if word == "--verbose" else len(word) - 1)
        elif word == "--version":
            version = True
        else:
            keep.append(word)
    args.extra = keep + extra[cut:]
    return version


_ADD_PARSER = re.compile(r"""\bsub\.add_parser\(\s*["']([A-Za-z0-9_-]+)["']""")


def _command_word(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


#: the address space under which a command does not run, checked before its parser imports anything
#: (`stsched.address_space`): under a smaller `ulimit -v` / `prlimit --as` the import of its libraries never ended
#: (scipy's OpenBLAS retries its buffer for ever) or failed with a traceback.  adapt: its parser's import hung at 280
#: MiB (2 OpenBLAS threads) and 200 MiB (OPENBLAS_NUM_THREADS=1 MALLOC_ARENA_MAX=1), failed with a traceback from
#: 250 to 360 MiB; from 400 MiB its smallest run ran or said "out of memory" in one line (2 s), runs that fit passing
#: (r2 at 500 and 600 MiB).  Measured on one machine (2 cores, Python 3.11, numpy 2.4, scipy 1.17 with OpenBLAS 0.3.30,
#: numba 0.68, ortools 9.15; `experiments/dev/limits18/as_floor.py`, 2026-12-07): not the command's need, which
#: grows with the cores (malloc's arenas, OpenBLAS's threads) and the library builds (r2's VmPeak there, unlimited:
#: 763 MiB with 2 threads, 555 with one), so that no run that fits elsewhere is refused; above the floor a run's own
#: need is met, or not, later (one "out of memory" line)
ADDRESS_SPACE_FLOORS = {"adapt": 400 * 2 ** 20}


def command_module(argv: list[str]) -> str | None:
    """The module of the command that `argv` names (its first word that is not an option), found in the
    modules' source (`sub.add_parser("NAME"`) without importing them; None when there is no such word or no
    module registers it.  `main` then builds the parser of that module alone: importing every command's
    dependencies (pandas, scipy, the latency models) costs about a second of CPU that one command does not need."""
    word = _command_word(argv)
    if word is None:
        return None
    for name in COMMAND_MODULES:
        spec = importlib.util.find_spec(name)
        try:
            text = open(spec.origin, encoding="utf-8").read() if spec and spec.origin else ""
        except OSError:
            continue
        if word in _ADD_PARSER.findall(text):
            return name
    return None


def _version_line() -> str:
    from stsched import __version__

    return f"stsched {__version__}"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser: every command, or with `only` the commands of that one module (`command_module`)."""
    parser = Parser(prog="stsched", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or progress lines on stderr (errors are still printed)")
    parser.add_argument("--version", action="version", version=_version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name in (COMMAND_MODULES if only is None else (only,)):
        importlib.import_module(name).add(sub)
    _describe(parser)
    _global_flags_after(parser)
    return parser


def _closed_stdout() -> int:
    """stdout went away (`stsched solvers | head -1`): leave quietly, no traceback at interpreter exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return 141


def _out_of_memory(error: MemoryError) -> int:
    """The memory a command needs is a limit of the machine, not bad input: one line, exit 1 (a bare MemoryError
    is named as one)."""
    print(f"stsched: out of memory: {error or 'MemoryError'}", file=sys.stderr)
    return 1


def _limit_reached(error: OSError) -> int:
    """A file (an --out, or stdout redirected to a file) could not be written for a limit of the machine
    (`ulimit -f`, a full disk): one line, exit 1; stdout, if it is what filled up, let go so that the interpreter's
    flush at exit is no second traceback."""
    print(f"stsched: cannot write {error.filename or 'the output'}: {error.strerror} ({machine_limit(error)})",
          file=sys.stderr)
    try:
        sys.stdout.flush()
    except OSError:
        _closed_stdout()
    return 1


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before run_parsed's handlers: while a command's parser imports its modules (numba,
        print("stsched: interrupted", file=sys.stderr)  # seconds on a loaded machine), a traceback before
        return 130


def _main(argv: list[str] | None) -> int:
    console = argv is None  # the `stsched` command itself: the process ends when this returns
    argv = sys.argv[1:] if argv is None else list(argv)
    word = _command_word(argv)
    if word in ADDRESS_SPACE_FLOORS:
        from stsched import address_space

        try:
            address_space.require(ADDRESS_SPACE_FLOORS[word], f"stsched {word}")
        except MemoryError as e:  # (run_parsed's line for the same error, before any import or work)
            return _out_of_memory(e)
    parser = build_parser(command_module(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (one line, exit 2), --help or --version: a code, never an exception
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if _lift_global_flags(args):
        print(_version_line())
        return 0
    args.verbose += getattr(args, "verbose_after", 0)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    code = run_parsed(args)
    if console:  # the interpreter's final collection would scan every object once more before exiting (0.1-0.3 s
        gc.freeze()  # of CPU after `show` imported matplotlib); frozen objects are skipped, nothing else changes
    return code


def run_parsed(args, interrupted: str = "stsched: interrupted", terminated: str = "stsched: terminated") -> int:
    """Run a parsed command (`args.run`) and map what it raises to the CLI's exit codes and one line on stderr:
    2 bad input, 1 an invalid plan given as input, 141 closed stdout, 143 SIGTERM, 130 interrupted."""
    quiet = bool(getattr(args, "quiet", False))
    quiet_before = os.environ.get("TQDM_DISABLE")
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"  # tqdm's own switch, for bars that are not told otherwise
    previous = {}
    try:
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _on_sigterm),
                    signal.SIGINT: signal.signal(signal.SIGINT, _on_sigint)}
    except ValueError:  # not the main thread (an in-process caller): leave signals alone
        pass
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()
        return code
    except InputError as e:
        print(f"stsched: error: {e}", file=sys.stderr)
        return 2
    except (InvalidPlanError, SolverFailed) as e:
        print(f"stsched: {e}", file=sys.stderr)
        return 1
    except MemoryError as e:  # a traceback before
        return _out_of_memory(e)
    except BrokenPipeError:
        return _closed_stdout()
    except OSError as e:
        if not machine_limit(e):
            raise
        return _limit_reached(e)
    except Terminated:
        print(terminated, file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if quiet and quiet_before is None:
            os.environ.pop("TQDM_DISABLE", None)


if __name__ == "__main__":
    sys.exit(main())
