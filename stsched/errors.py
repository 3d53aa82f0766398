"""Errors that reach the user as one clear line (the CLI prints them and exits 2)."""

from __future__ import annotations

import errno
import unicodedata


class InputError(ValueError):
    """Bad input: a malformed file, a missing column, an unknown service, a NaN.

    The message is one line that names the file, row, field or service concerned.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        text = f"{source}: {message}" if source else message
        super().__init__(one_line(text))


class FieldError(InputError):
    """A field of the core data (`Instance`, `Plan` and their parts) refused where the object is built
    (`stsched.validate.field_*`, or a rule across fields: a service named twice, sizes out of order): bad input when
    the caller built it, a fault of the solver when a solver did (`stsched.claims.guarded`: the instance it was
    given had passed these checks already)."""


CONTROL_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")  # control, format (bidirectional overrides), line/paragraph separators


def has_control(text: str) -> bool:
    """Whether a name holds characters that instances, plans and profile tables refuse (one rule for all three).
    A printable string holds none of them (`str.isprintable` is false for every character of those categories),
    so the per-character scan runs only on the rare name that is not: loading 100,000 services checks 400,000
    names."""
    if text.isprintable():
        return False
    return any(unicodedata.category(c) in CONTROL_CATEGORIES for c in text)


def name_key(text: str) -> str:
    """What a reader sees of a name: Unicode compatibility form (NFKC: 'café' composed or not, full-width letters),
    case folded, surrounding spaces dropped.  Two names of one instance with the same key are refused: 's0' and
    's0 ', or 'cafe\u0301' and 'caf\u00e9', print alike in every table and picture but were two services."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def one_line(text: str) -> str:
    """`text` on one printable line: newlines become spaces, other control characters (a carriage return, an
    escape sequence, a bidirectional override) their escaped form, so a hostile name cannot break the output."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text.replace("\n", " "))


def reraise_interrupt(e: BaseException) -> None:
    """Raise KeyboardInterrupt when `e` hides one: an interrupt that lands while an extension module initialises
    (ortools' cp_model) comes out as `ImportError: initialization failed` whose context is the KeyboardInterrupt;
    a `except Exception` around an import would swallow the interrupt and the command would run on, exit 0.  A
    hidden SIGTERM (`Terminated`) stays one (an LP engine that wrapped it made `stsched bound` exit 130, not 143)."""
    seen: set[int] = set()
    x: BaseException | None = e
    while x is not None and id(x) not in seen:
        if isinstance(x, KeyboardInterrupt):
            raise (Terminated() if isinstance(x, Terminated) else KeyboardInterrupt()) from e
        seen.add(id(x))
        x = x.__cause__ or x.__context__


_SIGNALS = {"count": 0, "kind": ""}  # interrupts the CLI's handlers have raised in this process


def note_interrupt(kind: str = "interrupt") -> None:
    """Called by the CLI's SIGINT/SIGTERM handlers before they raise: a library that swallows the exception (PuLP
    imports HiGHS inside a bare `except:`, then says 'HiGHS: Not Available') leaves this trace of it."""
    _SIGNALS["count"] += 1
    _SIGNALS["kind"] = kind


def interrupts() -> int:
    """How many interrupts the CLI's handlers have raised so far (`note_interrupt`)."""
    return _SIGNALS["count"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like an interrupt so that every `with` and `finally` (temporary folders) runs."""


def raise_noted_interrupt(since: int, error: BaseException) -> None:
    """Raise the interrupt (KeyboardInterrupt, or Terminated for SIGTERM) when one arrived after `interrupts()` was
    `since`: an error raised after it is its consequence, not a fault of its own."""
    if _SIGNALS["count"] != since:
        raise (Terminated() if _SIGNALS["kind"] == "terminate" else KeyboardInterrupt()) from error


class InfeasibleError(RuntimeError):
    """No plan can serve the instance; the message names what cannot be served."""


class SolverFailed(RuntimeError):
    """A solver raised or returned something that is not a result (a fault of the solver, ours or a plugin's):
    the CLI prints the one line naming it and exits 1 (`stsched.claims`)."""


class TooLarge(Exception):
    """An enumeration exceeded its limit (a solver catches it and says which limit)."""


class InvalidPlanError(Exception):
    """A plan given as input fails the checker (the CLI prints its first violation and exits 1, the checker's
    verdict code, unless `--allow-invalid` was given)."""


_MACHINE_LIMITS = {errno.EFBIG: "the file-size limit, ulimit -f", errno.ENOSPC: "a full disk",
                   errno.EDQUOT: "a disk quota"}


def machine_limit(error: BaseException) -> str | None:
    """What limit of the machine an OSError ran into (a file it could not write: `ulimit -f`, a full disk, a
    quota), or None: such an error is neither bad input nor a fault of the code, one line says which limit."""
    return _MACHINE_LIMITS.get(error.errno) if isinstance(error, OSError) else None
