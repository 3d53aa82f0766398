"""The problem: one frozen `Instance` that every component of stsched shares.

An instance holds the services (rate, SLO, memory), the device and its partition mechanism, how many GPUs are
available, the allowed batch sizes, the latency table the rules use (one `LatencyTable` per model, evaluated on the
instance's (batch, partition size, processes) grid), the interference form and the safety margin.  The rules that
judge a plan against an instance live in `stsched.checker` and are documented in docs/RULES.md.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Iterable, Mapping

from stsched.errors import FieldError, InputError, name_key
from stsched.queueing import batch_credit, best_credit, credit, slack_cycles
from stsched.validate import Range, field_enum, field_int, field_name, field_parts, field_real

# the ranges of the numbers that the problem and the plan (`stsched.plan`) both hold, one rule each
BATCH = Range(minimum=1, whole=True)  # requests per batch: a tenant's, a profile entry's, the instance's batches
SIZE = Range(minimum=0, strict=True)  # a partition's size (the mechanism's units): a plan's, a profile entry's
PROCS = Range(minimum=1, whole=True)  # processes of one service in a partition
START = Range(minimum=0, whole=True)  # a MIG slice's start slot: a plan's partition, a placement
RATE = Range(minimum=0)  # req/s: a service's, a tenant's
_SERVICE_RANGES = {"rate": RATE, "slo_ms": Range(minimum=0, strict=True), "memory_mb": Range(minimum=0),
                   "activation_mb_per_sample": Range(minimum=0)}


class MechanismKind(str, Enum):
    """How one GPU is split into partitions."""

    MPS = "mps"  # percent of SMs (CUDA MPS active-thread percentage); sizes on a GPU sum to <= 100
    SM = "sm"  # SM count (CUDA green contexts); counts on a GPU sum to <= the device's SMs
    MIG = "mig"  # MIG slice of 1, 2, 3, 4 or 7 compute slices at a legal start; slices never overlap


class Arrivals(str, Enum):
    """The arrival process an instance is planned for (docs/RULES.md, "Arrivals a plan is made for")."""

    DETERMINISTIC = "deterministic"  # the papers' rule: requests at exactly the planned rate
    POISSON = "poisson"  # Poisson arrivals: every batch credited by the Poisson margin `Margin.late_share`


#: the Poisson margin an instance planned for Poisson arrivals gets unless it states its own (docs/SIMULATOR.md).
#: 0.05: a plan the checker calls valid under it holds up under Poisson arrivals on its own (98-99.8 % overall);
#: 0.1 with the attainment loop needs fewer GPUs but its margin-alone plans do not (30-50 %, docs/RESULTS.md
#: "Safe default arrivals"), and max-scale plans and `--attainment 0` have no loop behind them
POISSON_LATE_SHARE = 0.05


def _check_ascending(values: tuple, what: str) -> None:
    """`values` strictly ascending: each once, in order (a repeat or a shuffled list is bad input, never read as
    a set: the heuristic takes the last size for the whole GPU, and a repeated batch would be tried twice)."""
    for i in range(1, len(values)):
        if not values[i] > values[i - 1]:
            word = "repeats" if values[i] == values[i - 1] else "is below"
            raise FieldError(f"{what}[{i}] = {values[i]:g} {word} {what}[{i - 1}] = {values[i - 1]:g}: list each "
                             f"value once, in ascending order, got {list(values)}")


class ThroughputRule(str, Enum):
    """How a partition's service capacity is credited (docs/RULES.md, throughput rule)."""

    CYCLE = "cycle"  # r <= 1000 * b / d for every tenant
    MEASURED = "measured"  # one tenant with k processes: r <= k * measured per-process throughput (ParvaGPU tables)


@dataclass(frozen=True)
class Service:
    """One DNN model served to clients at `rate` req/s under a latency SLO of `slo_ms` (end to end)."""

    name: str
    model: str
    rate: float
    slo_ms: float
    memory_mb: float = 0.0  # weights and runtime state of one process of this service
    activation_mb_per_sample: float = 0.0  # extra memory per request in a batch

    def __post_init__(self) -> None:
        field_name(self.name, "service name")
        field_name(self.model, f"service {self.name!r}: model")
        for label, rng in _SERVICE_RANGES.items():  # slo_ms: > 0, the rest >= 0
            v = getattr(self, label)  # (a number in range is kept, no label built: Instance.scaled rebuilds them all)
            if not rng.plain(v):
                object.__setattr__(self, label, rng.checked(v, f"service {self.name!r}: {label}"))

    def memory_for(self, batch: int) -> float:
        """Memory (MB) of one process of this service running batches of `batch` requests."""
        return self.memory_mb + self.activation_mb_per_sample * batch


@dataclass(frozen=True)
class Placement:
    """A legal MIG placement: a slice of `size` compute slices at `start`, occupying memory slices `slots`."""

    size: int
    start: int
    slots: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", field_int(self.size, "placement size", minimum=1))
        object.__setattr__(self, "start", START.of(self.start, f"placement of size {self.size}: start"))
        slots = field_parts(self.slots, f"placement of size {self.size} at {self.start}: slots", numbers.Real)
        object.__setattr__(self, "slots", tuple(field_int(x, f"placement of size {self.size} at {self.start}: slots",
                                                          minimum=0) for x in slots))


def _pair(value: tuple | list, what: str) -> tuple:
    """A (size, memory) pair."""
    if len(value) != 2:
        raise FieldError(f"{what}: expected (size, memory_mb), got {value!r:.60}")
    return tuple(value)


@dataclass(frozen=True)
class Mechanism:
    """The partition mechanism of a device and its legal partition sizes and placement rules."""

    kind: MechanismKind
    capacity: float  # 100 (MPS %), the SM count (sm) or 7 (MIG compute slices)
    sizes: tuple[float, ...]  # allowed partition sizes, ascending
    max_partitions: int | None = None  # per GPU (gpulet: 2)
    max_tenants: int | None = None  # per partition (gpulet: 3)
    max_procs: int = 1  # MPS processes of one service inside a partition (ParvaGPU: 3)
    placements: tuple[Placement, ...] = ()  # MIG only
    partition_memory_mb: tuple[tuple[float, float], ...] = ()  # MIG only: (size, memory of that slice)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", field_enum(self.kind, "mechanism: kind", MechanismKind))
        object.__setattr__(self, "capacity", field_real(self.capacity, "mechanism: capacity", minimum=0, strict=True))
        sizes = field_parts(self.sizes, "mechanism: sizes", object)
        if not sizes:
            raise FieldError("mechanism: no partition sizes")
        up_to = replace(SIZE, maximum=self.capacity)
        object.__setattr__(self, "sizes", tuple(up_to.of(x, f"mechanism: sizes[{i}]") for i, x in enumerate(sizes)))
        object.__setattr__(self, "placements", field_parts(self.placements, "mechanism: placements", Placement))
        pairs = field_parts(self.partition_memory_mb, "mechanism: partition_memory_mb", (tuple, list))
        object.__setattr__(self, "partition_memory_mb", tuple(
            (SIZE.of(size, f"mechanism: partition_memory_mb[{i}] size"),
             field_real(mem, f"mechanism: partition_memory_mb[{i}] memory", minimum=0, strict=True))
            for i, (size, mem) in enumerate(_pair(x, f"mechanism: partition_memory_mb[{i}]")
                                            for i, x in enumerate(pairs))))
        for name in ("max_partitions", "max_tenants", "max_procs"):  # None: no limit (max_procs: always a count)
            v = getattr(self, name)
            if v is not None or name == "max_procs":
                object.__setattr__(self, name, field_int(v, f"mechanism: {name}", minimum=1))
        _check_ascending(self.sizes, "mechanism.sizes")
        if self.kind is not MechanismKind.MIG and self.partition_memory_mb:  # (ignored there: refused, not dropped)
            raise FieldError(f"mechanism {self.kind.value}: partition_memory_mb is for mig only (a GPU's partitions "
                             f"share its memory on {self.kind.value}; give none)")
        if self.kind is MechanismKind.MIG and not self.placements:
            raise FieldError("mechanism mig: no legal placements given")

    def fraction(self, size: float) -> float:
        """Share of the GPU's compute that a partition of `size` holds."""
        return size / self.capacity

    def slice_memory(self, size: float) -> float | None:
        """Memory of a MIG slice of this size (None for MPS and SM partitions, which share the GPU's memory)."""
        for s, mem in self.partition_memory_mb:
            if s == size:
                return mem
        return None


@dataclass(frozen=True)
class Device:
    """A GPU type."""

    name: str
    memory_mb: float
    sms: int
    context_mb: float = 0.0  # memory overhead of every process (CUDA context, MPS client)
    memory_cap: float = 1.0  # usable share of memory (gpulet caps at 0.9)

    def __post_init__(self) -> None:
        field_name(self.name, "device name")
        what = f"device {self.name!r}"
        object.__setattr__(self, "memory_mb", field_real(self.memory_mb, f"{what}: memory_mb", minimum=0, strict=True))
        object.__setattr__(self, "sms", field_int(self.sms, f"{what}: sms", minimum=1))
        object.__setattr__(self, "context_mb", field_real(self.context_mb, f"{what}: context_mb", minimum=0))
        object.__setattr__(self, "memory_cap", field_real(self.memory_cap, f"{what}: memory_cap (the usable share of "
                                                          f"memory)", minimum=0, strict=True, maximum=1))


@dataclass(frozen=True)
class Margin:
    """A safety margin as published systems use them.

    Every execution time is multiplied by `latency_factor` (gpulet: 1.1) and every SLO by `slo_factor`
    (ParvaGPU: latency < 0.9 * SLO / 2, i.e. 0.9).  `late_share` > 0 is a margin against Poisson arrivals: a
    tenant with batch b is credited with `stsched.queueing.credit(b, late_share, cycles, share, duty)` requests
    per cycle instead of b: the larger of the per-batch credit (the mean per-cycle Poisson arrivals whose overflow
    beyond b is at most that share of them) and the per-tenant model's (at most that share late, given the cycles
    of waiting its latency budget leaves and its share of the service's stream; docs/RULES.md).
    """

    latency_factor: float = 1.0
    slo_factor: float = 1.0
    late_share: float = 0.0

    def __post_init__(self) -> None:
        # a NaN factor made every rule's test false; latency_factor >= 1, 0 < slo_factor <= 1, 0 <= late_share < 1
        for name, low, strict, high, strict_max in (("latency_factor", 1.0, False, None, False),
                                                     ("slo_factor", 0.0, True, 1.0, False),
                                                     ("late_share", 0.0, False, 1.0, True)):
            object.__setattr__(self, name, field_real(getattr(self, name), f"margin: {name}", minimum=low,
                                                      strict=strict, maximum=high, strict_max=strict_max))

    def credit(self, batch: int) -> float:
        """Requests per duty cycle every tenant running `batch` is credited with at least (the batch itself unless
        late_share; else the per-batch credit `stsched.queueing.batch_credit`)."""
        return batch_credit(batch, self.late_share) if self.late_share else float(batch)

    def best_credit(self, batch: int) -> float:
        """Requests per duty cycle no tenant running `batch` is credited with more than (for bounds)."""
        return best_credit(batch, self.late_share) if self.late_share else float(batch)

    def tenant_credit(self, batch: int, budget_ms: float, exec_ms: float, duty_ms: float,
                      share: float = 1.0) -> float:
        """Requests per duty cycle of `duty_ms` a tenant running `batch` for `exec_ms` under a latency budget of
        `budget_ms` is credited with when it receives `share` of its service's requests (docs/RULES.md)."""
        if not self.late_share:
            return float(batch)
        return credit(batch, self.late_share, slack_cycles(budget_ms, exec_ms, duty_ms), share, duty_ms)


@dataclass(frozen=True)
class Interference:
    """The interference form (a name registered in `stsched.interference`) and its fitted coefficients."""

    form: str = "none"
    coef: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        field_name(self.form, "interference form")
        coef = field_parts(self.coef, f"interference {self.form!r}: coef", object)
        object.__setattr__(self, "coef", tuple(field_real(c, f"interference {self.form!r}: coef[{i}]")
                                               for i, c in enumerate(coef)))


@dataclass(frozen=True)
class ProfileEntry:
    """Latency of one batch of a model in one partition size with `procs` processes, plus optional features."""

    batch: int
    size: float
    procs: int
    latency_ms: float
    throughput_rps: float | None = None  # measured, per process (requests/s)
    l2_util: float | None = None  # fraction of peak, solo
    dram_util: float | None = None  # fraction of peak, solo
    sm_elasticity: float | None = None  # -d ln latency / d ln size of the solo surface here (1 compute-, 0 launch-bound)

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch", BATCH.of(self.batch, "profile entry: batch"))
        where = f"profile entry at batch {self.batch}"
        object.__setattr__(self, "size", SIZE.of(self.size, f"{where}: size"))
        object.__setattr__(self, "procs", PROCS.of(self.procs, f"{where}: procs"))
        where = f"{where}, size {self.size:g}, procs {self.procs}"
        object.__setattr__(self, "latency_ms", field_real(self.latency_ms, f"{where}: latency_ms", minimum=0,
                                                          strict=True))
        for name in ("throughput_rps", "l2_util", "dram_util", "sm_elasticity"):  # throughput_rps > 0
            if getattr(self, name) is not None:
                object.__setattr__(self, name, field_real(getattr(self, name), f"{where}: {name}",
                                                          minimum=0 if name == "throughput_rps" else None,
                                                          strict=True))


GridKey = tuple[int, float, int]  # (batch, size, procs)


@dataclass(frozen=True)
class LatencyTable:
    """The latency table of one model on the instance's grid (measured, or evaluated from a latency model)."""

    model: str
    entries: tuple[ProfileEntry, ...]
    _index: Mapping[GridKey, ProfileEntry] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        field_name(self.model, "latency table: model")
        object.__setattr__(self, "entries", field_parts(self.entries, f"latency table of {self.model!r}: entries",
                                                        ProfileEntry))
        index: dict[GridKey, ProfileEntry] = {}
        for e in self.entries:  # each entry's own ranges: `ProfileEntry`
            key = (e.batch, float(e.size), e.procs)
            if key in index and index[key] != e:  # the checker and a solver would each read a different entry
                raise FieldError(f"latency table of {self.model!r}: two different entries at batch {e.batch}, "
                                 f"size {e.size:g}, procs {e.procs}")
            index[key] = e
        object.__setattr__(self, "_index", index)

    @classmethod
    def of(cls, model: str, entries: Iterable, source: str | None = None) -> "LatencyTable":
        """The table of `model` from `entries` (e.g. a generator building each `ProfileEntry` from a profile's rows):
        an entry refused while it is built is named with its model and, where known, the file it came from."""
        try:
            built = tuple(entries)
        except InputError as e:
            error = FieldError if isinstance(e, FieldError) else InputError
            raise error(f"latency table of {model!r}: {e}", source=source) from None
        return cls(model, built)

    def get(self, batch: int, size: float, procs: int = 1) -> ProfileEntry | None:
        return self._index.get((batch, float(size), procs))


def _distinct(instance: str, what: str, name: str, seen: dict[str, str]) -> None:
    """Refuse a name that reads as an earlier one (`stsched.errors.name_key`: case, Unicode form, spaces)."""
    key = name_key(name)
    if key in seen:
        both = f"{seen[key]!a} and {name!a}" if not (seen[key] + name).isascii() else f"{seen[key]!r} and {name!r}"
        raise FieldError(f"instance {instance!r}: {what}s {both} differ only in case, Unicode form or surrounding "
                         f"spaces (they print alike): rename one")
    seen[key] = name


@dataclass(frozen=True)
class Instance:
    """A scheduling problem: services to serve on up to `gpus` GPUs of one device type."""

    name: str
    services: tuple[Service, ...]
    device: Device
    mechanism: Mechanism
    gpus: int
    batches: tuple[int, ...]
    tables: tuple[LatencyTable, ...]
    margin: Margin = Margin()
    interference: Interference = Interference()
    throughput_rule: ThroughputRule = ThroughputRule.CYCLE
    notes: str = ""
    _services: Mapping[str, Service] = field(default_factory=dict, repr=False, compare=False)
    _tables: Mapping[str, LatencyTable] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        field_name(self.name, "instance name")
        what = f"instance {self.name!r}"
        object.__setattr__(self, "gpus", field_int(self.gpus, f"{what}: gpus", minimum=1))
        object.__setattr__(self, "services", field_parts(self.services, f"{what}: services", Service))
        object.__setattr__(self, "tables", field_parts(self.tables, f"{what}: tables", LatencyTable))
        for name, kind in (("device", Device), ("mechanism", Mechanism), ("margin", Margin),
                           ("interference", Interference)):
            if not isinstance(getattr(self, name), kind):
                raise FieldError(f"{what}: {name}: expected a {kind.__name__}, got "
                                 f"{type(getattr(self, name)).__name__} {getattr(self, name)!r:.60}")
        object.__setattr__(self, "throughput_rule", field_enum(self.throughput_rule, f"{what}: throughput_rule",
                                                               ThroughputRule))
        if not isinstance(self.notes, str):
            raise FieldError(f"{what}: notes: expected a string, got {type(self.notes).__name__}")
        if not self.services:
            raise FieldError(f"{what}: no services")
        batches = field_parts(self.batches, f"{what}: batches", object)
        if not batches:
            raise FieldError(f"{what}: no batch sizes")
        object.__setattr__(self, "batches", tuple(BATCH.of(b, f"{what}: batches[{i}]")
                                                  for i, b in enumerate(batches)))
        _check_ascending(self.batches, "batches")
        services: dict[str, Service] = {}
        seen: dict[str, str] = {}
        for s in self.services:
            if s.name in services:
                raise FieldError(f"{what}: service {s.name!r} appears twice")
            _distinct(self.name, "service", s.name, seen)
            services[s.name] = s
        tables: dict[str, LatencyTable] = {}
        seen = {}
        for t in self.tables:
            if t.model in tables and tables[t.model] != t:
                raise FieldError(f"{what}: model {t.model!r} has two different latency tables")
            if t.model not in tables:
                _distinct(self.name, "model", t.model, seen)
            tables[t.model] = t
        for s in self.services:
            if s.model not in tables:
                raise FieldError(f"{what}: service {s.name!r} uses model {s.model!r}, "
                                 f"which has no latency table")
        object.__setattr__(self, "_services", services)
        object.__setattr__(self, "_tables", tables)
        self._check_interference_features()

    def _check_interference_features(self) -> None:
        """A form that reads utilisation features needs them at every grid point (never a silent slowdown 1)."""
        from stsched.interference import get_form  # late: forms register themselves on import

        try:
            form = get_form(self.interference.form)
        except InputError as e:  # a field of the instance, as the others (`FieldError`)
            raise FieldError(f"instance {self.name!r}: {e}") from None
        if not form.needs_features:
            return
        if form.n_coef is not None and len(self.interference.coef) != form.n_coef:
            raise FieldError(f"instance {self.name!r}: interference form {form.name!r} takes {form.n_coef} "
                             f"coefficients, got {len(self.interference.coef)}")
        if not form.reads_util:  # counter-free forms read the fraction, latency, batch and elasticity only
            return
        used = {s.model for s in self.services}
        for t in self.tables:
            if t.model not in used:
                continue
            missing = [e for e in t.entries if e.l2_util is None or e.dram_util is None]
            if missing:
                e = missing[0]
                raise FieldError(f"instance {self.name!r}: interference form {form.name!r} needs L2 and DRAM "
                                 f"utilisation, model {t.model!r} lacks them at {len(missing)} grid points "
                                 f"(first: batch {e.batch}, size {e.size:g}, procs {e.procs})")

    # -- lookups ---------------------------------------------------------------------------------------------
    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def service(self, name: str) -> Service:
        try:
            return self._services[name]
        except KeyError:
            raise InputError(f"unknown service {name!r} (instance {self.name!r} has "
                             f"{', '.join(self.service_names)})") from None

    def has_service(self, name: str) -> bool:
        return name in self._services

    def table(self, model: str) -> LatencyTable:
        return self._tables[model]

    def entry(self, service: str, batch: int, size: float, procs: int = 1) -> ProfileEntry | None:
        """The table entry of a service's model, or None where the grid has no value (not profiled, OOM)."""
        return self._tables[self.service(service).model].get(batch, size, procs)

    def solo_ms(self, service: str, batch: int, size: float, procs: int = 1) -> float | None:
        """Solo execution time of one batch, the margin's latency factor included (None: not in the table)."""
        e = self.entry(service, batch, size, procs)
        return None if e is None else e.latency_ms * self.margin.latency_factor

    def slo_budget_ms(self, service: str) -> float:
        """The SLO that the latency rule compares against (the margin's slo factor applied)."""
        return self.service(service).slo_ms * self.margin.slo_factor

    def procs_options(self) -> tuple[int, ...]:
        return tuple(range(1, self.mechanism.max_procs + 1))

    # -- derived instances -----------------------------------------------------------------------------------
    def scaled(self, alpha: float) -> "Instance":
        """The same instance with every rate multiplied by `alpha`."""
        return replace(self, services=tuple(replace(s, rate=s.rate * alpha) for s in self.services))

    def with_rates(self, rates: Mapping[str, float]) -> "Instance":
        """The same instance with new rates for the services named in `rates`."""
        for name in rates:
            self.service(name)
        return replace(self, services=tuple(replace(s, rate=float(rates.get(s.name, s.rate)))
                                            for s in self.services))

    def with_gpus(self, gpus: int) -> "Instance":
        return replace(self, gpus=gpus)

    @property
    def arrivals(self) -> Arrivals:
        """Poisson when the instance carries the Poisson margin (`margin.late_share` > 0), else deterministic."""
        return Arrivals.POISSON if self.margin.late_share > 0 else Arrivals.DETERMINISTIC

    def with_arrivals(self, arrivals: Arrivals | str, late_share: float = POISSON_LATE_SHARE) -> "Instance":
        """The same instance planned for `arrivals`: poisson sets `margin.late_share` (default
        `POISSON_LATE_SHARE`), deterministic clears it."""
        try:
            kind = Arrivals(arrivals)
        except ValueError:
            raise InputError(f"arrivals {arrivals!r}: expected one of {[a.value for a in Arrivals]}") from None
        if kind is Arrivals.POISSON and not late_share > 0:
            raise InputError(f"arrivals poisson needs a late_share > 0, got {late_share!r}")
        return self.with_late_share(late_share if kind is Arrivals.POISSON else 0.0)

    def with_late_share(self, late_share: float) -> "Instance":
        """The same instance with the Poisson margin `Margin.late_share` set (0: the plain throughput rule)."""
        return replace(self, margin=replace(self.margin, late_share=late_share))

    def subset(self, names: Iterable[str]) -> "Instance":
        keep = set(names)
        return replace(self, services=tuple(s for s in self.services if s.name in keep))
