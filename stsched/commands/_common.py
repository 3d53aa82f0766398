"""What several commands share: printing a result as JSON, progress on or off (plans given as input are judged by
`stsched.judge`, which the Python API uses too)."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


def json_safe(x: Any) -> Any:
    """A JSON-safe copy: numpy scalars -> Python, NaN/inf -> None, tuples -> lists, other objects -> str."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and callable(x.item) and type(x).__module__ == "numpy":
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)


def print_json(obj: Any) -> None:
    """One JSON object on stdout (strict JSON: NaN and infinities become null)."""
    json.dump(json_safe(obj), sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


def progress(args) -> bool:
    """Progress on stderr unless `--quiet`."""
    return not getattr(args, "quiet", False)


LEAST_LIMIT_S = 1e-3  # what is left of a time limit spent before the work began (the work stops at once, validly)


def time_left(limit_s: float, since: float, clock: Callable[[], float] | None = None) -> float:
    """Seconds of a command's `limit_s` left at this moment when it started counting at `since`
    (`clock()`, taken before the instance file was read: the load counts against the limit; 16 MB at 100,000
    services took 1.1-1.3 s), at least LEAST_LIMIT_S.  `clock`: the one the limit is on (default
    `time.perf_counter`; a CPU-seconds limit reads `stsched.forking.cpu_seconds`, so the load counts as CPU)."""
    now = time.perf_counter() if clock is None else clock()
    return max(LEAST_LIMIT_S, limit_s - (now - since))
