"""One validation layer for every number a user can type (seeds, time limits, threads, loads, CVs, counts).

Each check returns the value or raises `InputError` with one line naming the option and the value; the CLI's
argparse types (`seed`, `time_limit`, `count`, ...) and the option dataclasses (`SolveOptions`, `SimOptions`, ...)
call the same functions, so a bad number is refused before any work whichever way it came in.
"""

from __future__ import annotations

import argparse
import math
import numbers
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from stsched.errors import FieldError, InputError, has_control

# the largest time limit accepted (one year): beyond it a deadline computed in float seconds loses meaning
MAX_TIME_LIMIT_S = 365 * 24 * 3600.0
# the longest run in real time (execute's arrival window and drain, a profiler co-run's window): one day.  These
# are measurements a person waits for on a machine they hold; a longer one is a typo (--duration 1e6: 11.6 days).
MAX_REAL_RUN_S = 24 * 3600.0
# the most batches timed (or run untimed first) per profiled point: the median of 10,000 samples already has a
# standard error of about 1 % of the samples' spread, every sample is kept in samples.json, and a point of a
# 100 ms batch then takes 17 minutes; more is a typo (--repeats 1000000000)
MAX_REPEATS = 10_000
# the most threads or worker processes one solve may ask for: more is a typo (CP-SAT's worker count is a 32-bit int:
# --threads 1000000000000 was a TypeError from inside it)
MAX_THREADS = 1024
# the most GPUs a max-scale plan may be asked to fill: its plan holds a layout per GPU (milp at 100,000 GPUs: 14 s
# of CPU and 0.6 GB past a 5 s limit, named; at 10^9 GPUs it ran 152 s past it and ran out of 5.5 GB).  The
# largest plan the project has run: gpulet m2 on 100,000 GPUs.  min-gpus reads an instance's GPUs as a cap only.
MAX_PLAN_GPUS = 100_000
# the most services of a drawn instance: 25 x the largest studied (4,096); 100,000 took 4.3 s of CPU and 0.3 GB
# (`stsched scenario random`), 10^8 a MemoryError
MAX_SERVICES = 100_000


def check_real(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
               strict: bool = False, strict_max: bool = False) -> float:
    """A finite real number within [minimum, maximum] (open ends with strict / strict_max)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {value!r}") from None
    except OverflowError:  # an integer beyond a float (10**400; its digits unprinted: str() refuses over 4300)
        what = (f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
                if isinstance(value, int) else f"a {type(value).__name__} beyond a float's range")
        raise InputError(f"{name}: expected a finite number, got {what}") from None
    if isinstance(value, bool) or not math.isfinite(v):
        raise InputError(f"{name}: expected a finite number, got {value!r}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise InputError(f"{name}: expected a number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    if maximum is not None and (v >= maximum if strict_max else v > maximum):
        raise InputError(f"{name}: expected a number {'<' if strict_max else '<='} {maximum:g}, got {value!r}")
    return v


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number within [minimum, maximum]."""
    if isinstance(value, bool):
        raise InputError(f"{name}: expected a whole number, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{name}: expected a whole number, got {value!r}")
        value = int(value)
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a whole number, got {value!r}") from None
    if minimum is not None and v < minimum:
        raise InputError(f"{name}: expected a whole number >= {minimum}, got {value!r}")
    if maximum is not None and v > maximum:
        raise InputError(f"{name}: expected a whole number <= {maximum}, got {value!r}")
    return v


def check_time_limit(value: Any, name: str = "time limit") -> float:
    """Seconds > 0, finite, at most a year."""
    return check_real(value, name, minimum=0.0, strict=True, maximum=MAX_TIME_LIMIT_S)


# ---------------------------------------------------------------------------------------------- fields of the core data
# The frozen dataclasses a user builds by hand (`Instance` and its parts, `Plan` and its parts) check their fields
# with these: a number must be a number (text is refused, not converted: `Tenant("s0", "4", 1.0)` was a TypeError from
# a comparison inside), finite and in range (a NaN latency factor made every comparison of the checker false, so it
# called any plan valid), and a sequence of parts a tuple of them (a list stayed mutable inside a frozen object).

def plain_in_range(value: Any, kinds: tuple[type, ...], *, minimum: float | None = None, strict: bool = False,
                   maximum: float | None = None, strict_max: bool = False) -> bool:
    """Whether `value` is already what `field_real` / `field_int` return for that range, so a build may skip them
    (`Tenant`, `Partition`, `Service`: the core data's fast path): exactly one of `kinds` (int, float; not a bool,
    not a numpy scalar), within a float's range (a NaN, an infinity and an int a float cannot hold fail it) and
    within [minimum, maximum] (open ends with strict / strict_max).  False only means: take the checking path.
    The core data's classes use `Range.plain`, built once per range from this rule; this function is its reference
    (tests/core/test_field_ranges_s20.py holds the two equal)."""
    if type(value) not in kinds or not -sys.float_info.max <= value <= sys.float_info.max:
        return False
    if minimum is not None and (value <= minimum if strict else value < minimum):
        return False
    return maximum is None or (value < maximum if strict_max else value <= maximum)


def field_real(value: Any, name: str, *, minimum: float | None = None, strict: bool = False,
               maximum: float | None = None, strict_max: bool = False) -> float:
    """A finite real number (an int, a float or a numpy scalar; not text, not a bool) within [minimum, maximum]
    (open ends with strict / strict_max): the type gate of the core data, then `check_real`'s range rule, its
    refusal a `FieldError`.  Returned as a Python number: as given when it is an int or a float (an int size stays
    an int), a numpy integer as an int, any other real as a float (JSON writes them)."""
    plain = type(value) in (int, float)  # the common case, without the slower ABC test
    if not plain and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise FieldError(f"{name}: expected a number, got {type(value).__name__} {value!r:.60}")
    try:
        v = check_real(value, name, minimum=minimum, strict=strict, maximum=maximum, strict_max=strict_max)
    except InputError as e:
        raise FieldError(str(e)) from None
    if plain:
        return value
    return int(value) if isinstance(value, numbers.Integral) else v


def field_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number (an int, a numpy integer or a float with no fraction; not text, not a bool) within
    [minimum, maximum]: the type gate of the core data, then `check_int`'s range rule, its refusal a `FieldError`."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or value != int(value):
            raise FieldError(f"{name}: expected a whole number, got {type(value).__name__} {value!r:.60}")
        value = int(value)
    try:
        return check_int(value, name, minimum=minimum, maximum=maximum)
    except InputError as e:
        raise FieldError(str(e)) from None


@dataclass(frozen=True)
class Range:
    """The range of one kind of number of the core data, written once (`stsched.problem`'s `BATCH`, `SIZE`, `PROCS`,
    `START`, `RATE`, read by the plan's and the problem's classes alike): `whole` numbers (`field_int`) or reals
    (`field_real`) within [minimum, maximum] (`strict`: the minimum itself refused).

    `plain(value)`: whether `value` already is what `checked` returns (`plain_in_range`'s test, built once per range:
    the fast path of `Tenant`, `Partition`, `Service`, which skip `checked` and its label then); `checked(value,
    name)`: that value, or a `FieldError` naming `name`; `of(value, name)`: the one or the other."""

    minimum: float | None = None
    strict: bool = False
    maximum: float | None = None
    whole: bool = False
    plain: Callable[[Any], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.strict and (self.whole or self.minimum is None):
            raise ValueError("Range: strict is for a real range's minimum")
        top = sys.float_info.max  # (`plain_in_range`: a NaN, an infinity and an int a float cannot hold fail it)
        lo = -top if self.minimum is None else max(self.minimum, -top)
        hi = top if self.maximum is None else min(self.maximum, top)
        if self.whole:
            test = lambda v: type(v) is int and lo <= v <= hi  # noqa: E731
        elif self.strict:
            test = lambda v: (type(v) is float or type(v) is int) and lo < v <= hi  # noqa: E731
        else:
            test = lambda v: (type(v) is float or type(v) is int) and lo <= v <= hi  # noqa: E731
        object.__setattr__(self, "plain", test)

    def checked(self, value: Any, name: str) -> Any:
        if self.whole:
            return field_int(value, name, minimum=self.minimum, maximum=self.maximum)
        return field_real(value, name, minimum=self.minimum, strict=self.strict, maximum=self.maximum)

    def of(self, value: Any, name: str) -> Any:
        return value if self.plain(value) else self.checked(value, name)


def field_parts(value: Any, name: str, kind: type | tuple[type, ...]) -> tuple:
    """A tuple (or a list, made a tuple) whose items are each a `kind`; text, a dict or an item of another type is
    refused naming its index (`Partition(50, [{"service": "s0"}])` was an AttributeError inside the checker)."""
    if not isinstance(value, (tuple, list)):
        raise FieldError(f"{name}: expected a tuple, got {type(value).__name__} {value!r:.60}")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for i, item in enumerate(value):
        if not isinstance(item, kinds):
            raise FieldError(f"{name}[{i}]: expected a {' or '.join(k.__name__ for k in kinds)}, got "
                             f"{type(item).__name__} {item!r:.60}")
    return tuple(value)


def field_name(value: Any, name: str, *, empty: bool = False) -> str:
    """A name: a string (non-empty unless `empty`) without control characters (`stsched.errors.has_control`, the
    rule the JSON reader applies)."""
    if not isinstance(value, str) or not (value or empty):
        raise FieldError(f"{name}: expected a non-empty string, got {type(value).__name__} {value!r:.60}")
    if has_control(value):
        raise FieldError(f"{name}: control characters are not allowed in names, got {value!r}")
    return value


def field_enum(value: Any, name: str, enum: type) -> Any:
    """A member of `enum`, given as itself or its value (a str enum's name as text is its member)."""
    try:
        return enum(value)
    except ValueError:
        raise FieldError(f"{name}: {value!r:.60} is not one of {[e.value for e in enum]}") from None


# ---------------------------------------------------------------------------------------------- argparse types
def _arg(fn: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """An argparse `type=` from a check: the InputError's line becomes argparse's one-line error (exit 2)."""

    def parse(text: str) -> Any:
        try:
            return fn(text)
        except InputError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None

    parse.__name__ = what  # argparse names the type in its message
    return parse


def real(minimum: float | None = None, maximum: float | None = None, *, strict: bool = False,
         strict_max: bool = False) -> Callable[[str], float]:
    return _arg(lambda t: check_real(t, "value", minimum=minimum, maximum=maximum, strict=strict,
                                     strict_max=strict_max), "number")


def whole(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    return _arg(lambda t: check_int(t, "value", minimum=minimum, maximum=maximum), "whole number")


seed = whole(0)  # random seeds: >= 0 (numpy refuses negative seeds)
count = whole(1)  # services, GPUs, rounds, repeats: >= 1
services = whole(1, MAX_SERVICES)  # services of a drawn instance
threads = whole(1, MAX_THREADS)
time_limit = _arg(lambda t: check_time_limit(t, "value"), "seconds")
positive = real(0.0, strict=True)  # durations, rates, epochs
nonnegative = real(0.0)
fraction = real(0.0, 1.0, strict=True, strict_max=True)  # targets in (0, 1)
factor = real(1.0)  # head-room factors >= 1
repeats = whole(1, MAX_REPEATS)  # timed batches per measured point
warmups = whole(0, MAX_REPEATS)  # untimed batches before them
real_run = real(0.0, MAX_REAL_RUN_S, strict=True)  # seconds of a run in real time (> 0, at most a day)
real_wait = real(0.0, MAX_REAL_RUN_S)  # seconds waited in real time (>= 0, at most a day)
