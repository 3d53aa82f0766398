"""JSON read/write of `Instance` and `Plan`, with validation that names the file and the field.

Files are written atomically (a temporary file in the same folder, then `os.replace`), so an interrupted run never
leaves half a file behind.  Malformed input raises `InputError` with one line: `FILE: FIELD: what is wrong`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from stsched.errors import InputError, has_control, machine_limit
from stsched.plan import MAX_DUTY_MS, GpuLayout, Partition, Plan, Tenant
from stsched.problem import (POISSON_LATE_SHARE, Arrivals, Device, Instance, Interference, LatencyTable, Margin,
                             Mechanism, MechanismKind, Placement, ProfileEntry, Service, ThroughputRule)

FORMAT_VERSION = 1

# the keys each object of an instance or a plan may hold: any other key is refused, naming it (a typo such as
# `margin.late_shar` must not pass silently); extras a user wants to carry go under the top-level `extensions`
# object, which stsched accepts and ignores
EXTENSIONS = "extensions"
INSTANCE_KEYS = frozenset({"format", "name", "notes", "gpus", "batches", "throughput_rule", "margin", "interference",
                           "arrivals", "device", "mechanism", "services", "tables", EXTENSIONS})
MARGIN_KEYS = frozenset({"latency_factor", "slo_factor", "late_share"})
INTERFERENCE_KEYS = frozenset({"form", "coef"})
DEVICE_KEYS = frozenset({"name", "memory_mb", "sms", "context_mb", "memory_cap"})
MECHANISM_KEYS = frozenset({"kind", "capacity", "sizes", "max_partitions", "max_tenants", "max_procs", "placements",
                            "partition_memory_mb"})
PLACEMENT_KEYS = frozenset({"size", "start", "slots"})
SERVICE_KEYS = frozenset({"name", "model", "rate", "slo_ms", "memory_mb", "activation_mb_per_sample"})
TABLE_KEYS = frozenset({"model", "columns", "rows"})
PLAN_KEYS = frozenset({"format", "solver", "scale", "notes", "gpus", EXTENSIONS})
GPU_KEYS = frozenset({"partitions"})
PARTITION_KEYS = frozenset({"size", "procs", "start", "duty_ms", "tenants"})
TENANT_KEYS = frozenset({"service", "batch", "rate"})
TABLE_COLUMNS = ("batch", "size", "procs", "latency_ms", "throughput_rps", "l2_util", "dram_util", "sm_elasticity")


# ---------------------------------------------------------------------------------------------- atomic writing
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Write `text` to `path` so that readers see the old file or the new one, never a partial one.

    The one writer of every command (`stsched.outputs` checks the path before the work): a symbolic link is
    followed (the file it points to is replaced, the link stays); a character device (/dev/null) or a FIFO is
    written through, never replaced; a new file gets the umask's permissions, an overwritten one keeps its mode.
    A write that fails raises InputError naming the path, except one that ran into a limit of the machine (a full
    disk, `ulimit -f`, a quota: `stsched.errors.machine_limit`), re-raised as the OSError it is (exit 1, one line,
    as stdout on a full disk)."""
    with atomic_writer(path) as f:
        f.write(text.encode() if isinstance(text, str) else text)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """`write_atomic` for output written piece by piece (a large CSV in chunks, never whole in memory): a binary
    file to write; on a clean exit it replaces `path` (same rules as `write_atomic`), on an exception the
    temporary file is removed and `path` is left as it was."""
    from stsched.outputs import is_stream

    given = str(path)
    path = Path(os.path.realpath(given))
    try:
        if is_stream(path):
            with open(path, "wb") as f:
                yield f
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        if machine_limit(e):  # a full disk, `ulimit -f`, a quota: the machine's limit (exit 1), not bad input
            if e.filename is None:  # a write to the open temporary file names no file: name the output
                e.filename = given
            raise
        raise InputError(f"cannot write: {e.strerror or e}", source=given) from None


def _strict(x: Any) -> Any:
    """`x` with every NaN or infinity as None (JSON has neither: Python's NaN / Infinity tokens break other
    readers, and stsched refuses them on input)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def _dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of `obj`: NaN and infinities as null (`_strict`), which walks and copies the whole object
    only when there is one (json refuses them first, so the usual case costs one dump)."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(_strict(obj), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Strict JSON (NaN and infinities written as null), atomically."""
    write_atomic(path, _dumps(obj, indent=1, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    if not isinstance(path, (str, os.PathLike)):  # an int is a file descriptor to open(): 0 read standard input
        raise InputError(f"expected the path of a JSON file, got {type(path).__name__} {path!r:.60}")
    try:
        with open(path) as f:
            return json.load(f, object_pairs_hook=_unique_keys)
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", source=str(path)) from None
    except _DuplicateKey as e:
        raise InputError(f"key {e.args[0]!r} appears twice in one object (JSON keeps the last one silently)",
                         source=str(path)) from None
    except RecursionError:  # '[' x 100,000 was a RecursionError traceback
        raise InputError("not valid JSON: nested too deeply", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", source=str(path)) from None


class _DuplicateKey(Exception):
    """A JSON object with one key twice ({"gpus": 1, ..., "gpus": 7} read as 7, without a word)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out


# ---------------------------------------------------------------------------------------------- field reader
class _Reader:
    """Reads typed fields from parsed JSON; every error names the field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> InputError:
        return InputError(f"{where}: {what}", source=self.source)

    def obj(self, d: Any, where: str, keys: frozenset[str] | None = None) -> dict:
        """An object; with `keys`, one holding no other key."""
        if not isinstance(d, dict):
            raise self.fail(where, f"expected an object, got {type(d).__name__}")
        if keys is not None:
            unknown = sorted(str(k) for k in d if k not in keys)
            if unknown:
                at = f"{where}.{unknown[0]}" if where and where != "top level" else unknown[0]
                raise self.fail(at, f"unknown key (known: {', '.join(sorted(keys))}; extras belong under the "
                                    f"top-level {EXTENSIONS!r} object)")
        return d

    def format(self, d: dict) -> None:
        """The `format` number, when given, is one this version reads."""
        if "format" in d and (isinstance(d["format"], bool) or d["format"] != FORMAT_VERSION):
            raise self.fail("format", f"unknown format {d['format']!r} (this version of stsched reads format "
                                      f"{FORMAT_VERSION})")
        if EXTENSIONS in d and not isinstance(d[EXTENSIONS], dict):
            raise self.fail(EXTENSIONS, f"expected an object, got {type(d[EXTENSIONS]).__name__}")

    def list(self, d: dict, key: str, where: str, required: bool = True) -> list:
        if key not in d:
            if required:
                raise self.fail(f"{where}.{key}" if where else key, "missing")
            return []
        v = d[key]
        if not isinstance(v, list):
            raise self.fail(f"{where}.{key}" if where else key, f"expected a list, got {type(v).__name__}")
        return v

    def num(self, d: dict, key: str, where: str, default: float | None = None, *, minimum: float | None = None,
            positive: bool = False, optional: bool = False, maximum: float | None = None) -> float | None:
        path = f"{where}.{key}" if where else key
        if key not in d or d[key] is None:
            if optional:
                return default
            if default is None:
                raise self.fail(path, "missing")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(path, f"expected a number, got {v!r}")
        try:
            finite = math.isfinite(v)
        except OverflowError:  # an integer of 400 digits (JSON allows it) was an OverflowError from inside
            raise self.fail(path, f"too large for a number ({len(str(abs(v)))} digits)") from None
        if not finite:
            raise self.fail(path, f"must be finite, got {v!r}")
        if positive and v <= 0:
            raise self.fail(path, f"must be > 0, got {v!r}")
        if minimum is not None and v < minimum:
            raise self.fail(path, f"must be >= {minimum}, got {v!r}")
        if maximum is not None and v > maximum:
            raise self.fail(path, f"must be <= {maximum}, got {v!r}")
        return float(v)

    def int(self, d: dict, key: str, where: str, default: int | None = None, minimum: int | None = None,
            optional: bool = False) -> int | None:
        v = self.num(d, key, where, default, minimum=minimum, optional=optional)
        if v is None:
            return None
        if v != int(v):
            raise self.fail(f"{where}.{key}", f"expected an integer, got {d[key]!r}")
        return int(v)

    def nums(self, d: dict, key: str, where: str, *, integer: bool = False, minimum: float | None = None,
             positive: bool = False, required: bool = True) -> list:
        """A list of finite numbers (integers with `integer`), each range-checked, the element named on error."""
        path = f"{where}.{key}" if where else key
        items = self.list(d, key, where, required)
        out = []
        for i, v in enumerate(items):
            rec = {key: v}
            x = (self.int(rec, key, where, minimum=minimum) if integer
                 else self.num(rec, key, where, minimum=minimum, positive=positive))
            if x is None:
                raise self.fail(f"{path}[{i}]", "missing")
            out.append(x)
        return out

    def str(self, d: dict, key: str, where: str, default: str | None = None) -> str:
        path = f"{where}.{key}" if where else key
        if key not in d:
            if default is None:
                raise self.fail(path, "missing")
            return default
        v = d[key]
        if not isinstance(v, str) or not v and (default is None or key not in ("notes", "solver")):
            raise self.fail(path, f"expected a non-empty string, got {v!r}")
        if key != "notes" and has_control(v):
            raise self.fail(path, f"control characters are not allowed in names, got {v!r}")
        return v

    def enum(self, d: dict, key: str, where: str, enum: type, default=None):
        raw = self.str(d, key, where, None if default is None else default.value)
        try:
            return enum(raw)
        except ValueError:
            raise self.fail(f"{where}.{key}" if where else key,
                            f"{raw!r} is not one of {[e.value for e in enum]}") from None


def _wrap(source: str, fn, *args):
    try:
        return fn(*args)
    except InputError as e:
        if e.source is None:
            raise InputError(str(e), source=source) from None
        raise


# ---------------------------------------------------------------------------------------------- instance
def instance_to_dict(inst: Instance) -> dict:
    m = inst.mechanism
    return {
        "format": FORMAT_VERSION,
        "name": inst.name,
        "notes": inst.notes,
        "gpus": inst.gpus,
        "batches": list(inst.batches),
        "throughput_rule": inst.throughput_rule.value,
        "arrivals": inst.arrivals.value,
        "margin": {"latency_factor": inst.margin.latency_factor, "slo_factor": inst.margin.slo_factor,
                   **({"late_share": inst.margin.late_share} if inst.margin.late_share else {})},
        "interference": {"form": inst.interference.form, "coef": list(inst.interference.coef)},
        "device": {"name": inst.device.name, "memory_mb": inst.device.memory_mb, "sms": inst.device.sms,
                   "context_mb": inst.device.context_mb, "memory_cap": inst.device.memory_cap},
        "mechanism": {
            "kind": m.kind.value, "capacity": m.capacity, "sizes": list(m.sizes),
            "max_partitions": m.max_partitions, "max_tenants": m.max_tenants, "max_procs": m.max_procs,
            "placements": [{"size": p.size, "start": p.start, "slots": list(p.slots)} for p in m.placements],
            "partition_memory_mb": [[s, mem] for s, mem in m.partition_memory_mb],
        },
        "services": [{"name": s.name, "model": s.model, "rate": s.rate, "slo_ms": s.slo_ms, "memory_mb": s.memory_mb,
                      "activation_mb_per_sample": s.activation_mb_per_sample} for s in inst.services],
        "tables": [{"model": t.model, "columns": list(TABLE_COLUMNS),
                    "rows": [[e.batch, e.size, e.procs, e.latency_ms, e.throughput_rps, e.l2_util, e.dram_util,
                              e.sm_elasticity] for e in t.entries]} for t in inst.tables],
    }


def instance_from_dict(d: Any, source: str = "<instance>") -> Instance:
    r = _Reader(source)
    d = r.obj(d, "top level", INSTANCE_KEYS)
    r.format(d)
    services = []
    for i, s in enumerate(r.list(d, "services", "")):
        w = f"services[{i}]"
        s = r.obj(s, w, SERVICE_KEYS)
        name = r.str(s, "name", w)
        w = f"services[{i}] ({name})"
        services.append(_wrap(source, Service, name, r.str(s, "model", w), r.num(s, "rate", w, minimum=0),
                              r.num(s, "slo_ms", w, positive=True), r.num(s, "memory_mb", w, 0.0, minimum=0),
                              r.num(s, "activation_mb_per_sample", w, 0.0, minimum=0)))
    if "device" not in d:
        raise r.fail("device", "missing")
    dev = r.obj(d["device"], "device", DEVICE_KEYS)
    device = Device(r.str(dev, "name", "device"), r.num(dev, "memory_mb", "device", positive=True),
                    r.int(dev, "sms", "device", minimum=1), r.num(dev, "context_mb", "device", 0.0, minimum=0),
                    r.num(dev, "memory_cap", "device", 1.0, positive=True, maximum=1.0))
    if "mechanism" not in d:
        raise r.fail("mechanism", "missing")
    m = r.obj(d["mechanism"], "mechanism", MECHANISM_KEYS)
    placements = tuple(Placement(r.int(p, "size", f"mechanism.placements[{i}]", minimum=1),
                                 r.int(p, "start", f"mechanism.placements[{i}]", minimum=0),
                                 tuple(r.nums(p, "slots", f"mechanism.placements[{i}]", integer=True, minimum=0)))
                       for i, p in enumerate(r.obj(x, f"mechanism.placements[{j}]", PLACEMENT_KEYS)
                                             for j, x in enumerate(r.list(m, "placements", "mechanism", False))))
    pmem = []
    for i, pair in enumerate(r.list(m, "partition_memory_mb", "mechanism", False)):
        if not isinstance(pair, list) or len(pair) != 2:
            raise r.fail(f"mechanism.partition_memory_mb[{i}]", f"expected [size, memory_mb], got {pair!r}")
        pmem.append(tuple(r.nums({"p": pair}, "p", f"mechanism.partition_memory_mb[{i}]", positive=True)))
    pmem = tuple(pmem)
    mech = _wrap(source, Mechanism, r.enum(m, "kind", "mechanism", MechanismKind),
                 r.num(m, "capacity", "mechanism", positive=True),
                 tuple(r.nums(m, "sizes", "mechanism", positive=True)),
                 r.int(m, "max_partitions", "mechanism", minimum=1, optional=True),
                 r.int(m, "max_tenants", "mechanism", minimum=1, optional=True),
                 r.int(m, "max_procs", "mechanism", 1, minimum=1), placements, pmem)
    tables = []
    models: dict[str, int] = {}
    for i, t in enumerate(r.list(d, "tables", "")):
        w = f"tables[{i}]"
        t = r.obj(t, w, TABLE_KEYS)
        model = r.str(t, "model", w)
        cols = r.list(t, "columns", w)
        need = list(TABLE_COLUMNS)
        if cols not in (need, need[:-1]):  # sm_elasticity is optional
            raise r.fail(f"{w}.columns", f"expected {need}, got {cols}")
        need = list(cols)
        if model in models:
            raise r.fail(f"{w}.model", f"{model!r} already has a table (tables[{models[model]}]): one table per model")
        models[model] = i
        entries = []
        keys: dict[tuple, int] = {}
        for j, row in enumerate(r.list(t, "rows", w)):
            rw = f"{w} ({model}).rows[{j}]"
            if not isinstance(row, list) or len(row) != len(need):
                raise r.fail(rw, f"expected a list of {len(need)} values, got {row!r}")
            rec = dict(zip(need, row))
            entries.append(ProfileEntry(r.int(rec, "batch", rw, minimum=1), r.num(rec, "size", rw, positive=True),
                                        r.int(rec, "procs", rw, minimum=1), r.num(rec, "latency_ms", rw, positive=True),
                                        r.num(rec, "throughput_rps", rw, positive=True, optional=True),
                                        r.num(rec, "l2_util", rw, minimum=0, optional=True),
                                        r.num(rec, "dram_util", rw, minimum=0, optional=True),
                                        r.num(rec, "sm_elasticity", rw, optional=True)))
            e = entries[-1]
            key = (e.batch, float(e.size), e.procs)
            if key in keys:  # the checker and a solver would each read a different row
                raise r.fail(rw, f"repeats batch {e.batch}, size {e.size:g}, procs {e.procs} of rows[{keys[key]}]")
            keys[key] = j
        tables.append(_wrap(source, LatencyTable, model, tuple(entries)))
    margin_d = r.obj(d.get("margin", {}), "margin", MARGIN_KEYS)
    arrivals = r.enum(d, "arrivals", "", Arrivals, None) if "arrivals" in d else None
    late_share = r.num(margin_d, "late_share", "margin", 0.0)
    if arrivals is Arrivals.POISSON and late_share == 0.0:
        late_share = POISSON_LATE_SHARE  # "arrivals": "poisson" alone: the project's Poisson margin
    if arrivals is Arrivals.DETERMINISTIC and late_share > 0:
        raise r.fail("arrivals", f"'deterministic' contradicts margin.late_share {late_share:g} (the Poisson "
                                 f"margin): say 'poisson' or drop the late_share")
    margin = _wrap(source, Margin, r.num(margin_d, "latency_factor", "margin", 1.0),
                   r.num(margin_d, "slo_factor", "margin", 1.0), late_share)
    inter_d = r.obj(d.get("interference", {}), "interference", INTERFERENCE_KEYS)
    inter = Interference(r.str(inter_d, "form", "interference", "none"),
                         tuple(r.nums(inter_d, "coef", "interference", required=False)))
    from stsched.interference import get_form  # late import: forms may register themselves on import
    _wrap(source, get_form, inter.form)
    return _wrap(source, Instance, r.str(d, "name", "", "instance"), tuple(services), device, mech,
                 r.int(d, "gpus", "", minimum=1), tuple(r.nums(d, "batches", "", integer=True, minimum=1)),
                 tuple(tables),
                 margin, inter, r.enum(d, "throughput_rule", "", ThroughputRule, ThroughputRule.CYCLE),
                 r.str(d, "notes", "", ""))


def load_instance(path: str | os.PathLike) -> Instance:
    return instance_from_dict(read_json(path), str(path))


def save_instance(inst: Instance, path: str | os.PathLike) -> None:
    write_json(path, instance_to_dict(inst))


# ---------------------------------------------------------------------------------------------- plan
def plan_to_dict(plan: Plan) -> dict:
    return {
        "format": FORMAT_VERSION, "solver": plan.solver, "scale": plan.scale, "notes": plan.notes,
        "gpus": [{"partitions": [
            {"size": p.size, "procs": p.procs, "start": p.start, "duty_ms": p.duty_ms,
             "tenants": [{"service": t.service, "batch": t.batch, "rate": t.rate} for t in p.tenants]}
            for p in g.partitions]} for g in plan.gpus],
    }


def plan_from_dict(d: Any, source: str = "<plan>") -> Plan:
    r = _Reader(source)
    d = r.obj(d, "top level", PLAN_KEYS)
    r.format(d)
    gpus = []
    for gi, g in enumerate(r.list(d, "gpus", "")):
        g = r.obj(g, f"gpus[{gi}]", GPU_KEYS)
        parts = []
        for pi, p in enumerate(r.list(g, "partitions", f"gpus[{gi}]")):
            w = f"gpus[{gi}].partitions[{pi}]"
            p = r.obj(p, w, PARTITION_KEYS)
            tenants = []
            for ti, t in enumerate(r.list(p, "tenants", w)):
                tw = f"{w}.tenants[{ti}]"
                t = r.obj(t, tw, TENANT_KEYS)
                tenants.append(_wrap(source, Tenant, r.str(t, "service", tw), r.int(t, "batch", tw, minimum=1),
                                     r.num(t, "rate", tw, minimum=0)))
            parts.append(_wrap(source, Partition, r.num(p, "size", w, positive=True), tuple(tenants),
                               r.num(p, "duty_ms", w, positive=True, optional=True, maximum=MAX_DUTY_MS), r.int(p, "procs", w, 1, minimum=1),
                               r.int(p, "start", w, minimum=0, optional=True)))
        gpus.append(GpuLayout(tuple(parts)))
    return Plan(tuple(gpus), r.num(d, "scale", "", 1.0, positive=True), r.str(d, "solver", "", ""),
                r.str(d, "notes", "", ""))


def load_plan(path: str | os.PathLike) -> Plan:
    return plan_from_dict(read_json(path), str(path))


def save_plan(plan: Plan, path: str | os.PathLike) -> None:
    write_json(path, plan_to_dict(plan))


def _digest(d: dict) -> str:
    text = _dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_digest(plan: Plan) -> str:
    """A short fingerprint of what a simulation of `plan` depends on (its GPUs, partitions, tenants, scale; not the
    solver's name or notes): a summary carries it, and `stsched show --sim` refuses another plan's summary."""
    d = plan_to_dict(plan)
    return _digest({"gpus": d["gpus"], "scale": d["scale"]})


def instance_digest(inst: Instance) -> str:
    """A short fingerprint of an instance (every field but its notes), as `plan_digest`."""
    d = instance_to_dict(inst)
    d.pop("notes", None)
    return _digest(d)


def check_plan_services(inst: Instance, plan: Plan, source: str) -> None:
    """Unknown services in a plan are bad input (exit 2), not a rule violation."""
    for gi, pi, _, t in plan.placements():
        if not inst.has_service(t.service):
            raise InputError(f"gpus[{gi}].partitions[{pi}]: unknown service {t.service!r}", source=source)
