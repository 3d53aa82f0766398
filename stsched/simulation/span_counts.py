"""SLO attainment in bounded memory: per service and per time span of the arrival window, requests and those
within the SLO, counted as the simulator hands over each partition's records and then dropped.

    counts = simulate_spans(instance, plan, ArrivalSpec("poisson"), SimOptions(duration_s=120, seed=3), spans=10)
    counts.attainment, counts.lower_bounds(z=1.645)

What the attainment loop (`stsched.planning.attainment`) needs from a simulation is the attainment over all
requests and, per service, a lower confidence bound by batch means; both follow from these counts, which take
services x spans integers however many requests were simulated.  `simulate` keeps every request's record (about
36 bytes each, and the per-service masks of a summary on top): at 256 services and 236,000 req/s a 120-s round held
9.6 GB (docs/RESULTS.md, "Safe default arrivals").  `simulate_spans` runs the same arrivals through the same
`run_plan` (so the same latencies, request by request) but keeps only the counts.  It draws and runs the services
a group at a time (`service_groups`: whole components of the plan, services linked by sharing a partition, joined
up to about GROUP_REQUESTS requests): each service draws from its own stream and partitions never interact, so the
counts are those of one run of all (a test checks it; under random routing, whose draws run through all services
in order, one group of all).  Its memory (`span_need`): `SPAN_BYTES_PER_REQUEST` for every request of the largest
group (arrival arrays, service ids, the routing's copies) and `SPAN_PARTITION_BYTES_PER_REQUEST` for every request
of the largest partition (the one being run); a run whose largest group would not fit is refused before any arrival
is drawn (`MemoryShort`).  `span_counts(records, ...)` counts full records the same way (a test checks that both
give the same counts and bounds).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from stsched.plan import Plan
from stsched.problem import Instance
from stsched.simulation.arrivals import (SPAN_BYTES_PER_REQUEST, SPAN_PARTITION_BYTES_PER_REQUEST, ArrivalSpec,
                                        MemoryNeed, check_fits)
from stsched.simulation.routing import routed_weights
from stsched.simulation.simulator import SimOptions, SimulationStopped, arrivals_of, run_plan
from stsched.simulation.summary import RequestRecords, within_slo


@dataclass(frozen=True)
class SpanCounts:
    """`requests[s, j]` and `within[s, j]`: the requests of service s (index into `services`) that arrived in span j
    of the window (`spans` equal spans; never-served requests count as requests, not within), and those completed
    within the service's SLO."""

    services: tuple[str, ...]
    requests: np.ndarray  # (services, spans) int64
    within: np.ndarray  # (services, spans) int64

    @property
    def attainment(self) -> float:
        """Within-SLO share of all requests (1.0 when none arrived), as `Summary.slo_attainment`."""
        n = int(self.requests.sum())
        return int(self.within.sum()) / n if n else 1.0

    def lower_bounds(self, z: float) -> tuple[float, np.ndarray]:
        """Lower confidence bounds of the SLO attainment, over all requests and per service, by batch means: the
        mean of the spans' attainments - z x its standard error (spans without requests left out; the point
        estimate where fewer than two spans remain)."""
        overall = _batch_mean_bound(self.requests.sum(axis=0), self.within.sum(axis=0), z)
        return overall, np.array([_batch_mean_bound(n, g, z) for n, g in zip(self.requests, self.within)])


def _batch_mean_bound(n: np.ndarray, good: np.ndarray, z: float) -> float:
    have = n > 0
    if have.sum() < 2:
        return float(good.sum() / n.sum()) if n.sum() else 1.0
    frac = good[have] / n[have]
    return float(frac.mean() - z * frac.std(ddof=1) / math.sqrt(len(frac)))


class SpanTally:
    """Adds records, piece by piece, to the counts of `SpanCounts` (a request's span: by its arrival)."""

    def __init__(self, services: tuple[str, ...], slo_ms: np.ndarray, duration_s: float, spans: int):
        self.services, self.slo_ms, self.duration_s, self.spans = services, slo_ms, duration_s, spans
        self.requests = np.zeros((len(services), spans), dtype=np.int64)
        self.within = np.zeros((len(services), spans), dtype=np.int64)

    def add(self, records: RequestRecords) -> None:
        if not len(records):
            return
        span = np.minimum((records.arrival / self.duration_s * self.spans).astype(int), self.spans - 1)
        cell = records.service.astype(np.int64) * self.spans + span
        size = len(self.services) * self.spans
        self.requests += np.bincount(cell, minlength=size).reshape(self.requests.shape)
        ok = within_slo(records, self.slo_ms)
        self.within += np.bincount(cell[ok], minlength=size).reshape(self.within.shape)

    def counts(self) -> SpanCounts:
        return SpanCounts(self.services, self.requests.copy(), self.within.copy())


def span_counts(records: RequestRecords, slo_ms: np.ndarray, duration_s: float, spans: int) -> SpanCounts:
    """The counts of full records (`slo_ms` per service of `records.services`)."""
    tally = SpanTally(records.services, slo_ms, duration_s, spans)
    tally.add(records)
    return tally.counts()


def largest_partition_rate(plan: Plan, rates: Mapping[str, float]) -> float:
    """Requests per second the busiest partition of `plan` is routed at the services' `rates` (x `plan.scale`): each
    service's rate split across its tenants by their planned shares, as the simulator routes it
    (`routing.routed_weights`)."""
    parts = [part for gpu in plan.gpus for part in gpu.partitions]
    planned: dict[str, list[float]] = {}
    for part in parts:
        for t in part.tenants:
            planned.setdefault(t.service, []).append(t.rate)
    shares = {n: (w := routed_weights(np.array(r, dtype=float))) / w.sum() for n, r in planned.items()}
    seen = dict.fromkeys(planned, 0)  # each service's tenants in plan order, as `planned` lists them
    most = 0.0
    for part in parts:
        load = 0.0
        for t in part.tenants:
            load += rates.get(t.service, 0.0) * plan.scale * shares[t.service][seen[t.service]]
            seen[t.service] += 1
        most = max(most, load)
    return most


#: services are simulated in groups of about this many requests (whole components of the plan: the services that
#: share a partition, linked); a group's arrivals are drawn, run and dropped before the next group's
GROUP_REQUESTS = 2 ** 22


def service_groups(instance: Instance, plan: Plan, duration_s: float, routing: str) -> list[list[int]]:
    """Positions of the instance's services in the groups `simulate_spans` runs one after the other: the plan's
    components (services linked by sharing a partition; a service no partition serves is one alone), in the order
    of their first service, joined while a group expects fewer than GROUP_REQUESTS requests.  One group of all
    under `routing` random, whose draws run through the services in order (groups would change them)."""
    n = len(instance.services)
    if routing != "interleave":
        return [list(range(n))]
    index = {name: i for i, name in enumerate(instance.service_names)}
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for gpu in plan.gpus:
        for part in gpu.partitions:
            ids = [index[t.service] for t in part.tenants if t.service in index]
            for j in ids[1:]:
                a, b = find(ids[0]), find(j)
                if a != b:
                    root[max(a, b)] = min(a, b)
    components: dict[int, list[int]] = {}
    for i in range(n):
        components.setdefault(find(i), []).append(i)
    groups: list[list[int]] = []
    size = 0.0
    for members in components.values():  # in the order of their first service
        expect = sum(max(0.0, instance.services[i].rate) for i in members) * plan.scale * duration_s
        if groups and size + expect <= GROUP_REQUESTS:
            groups[-1] += members
            size += expect
        else:
            groups.append(list(members))
            size = expect
    return groups


def span_need(instance: Instance, plan: Plan | None, duration_s: float) -> MemoryNeed:
    """The memory `simulate_spans` holds for a window of `duration_s` seconds, for the requests of the group of
    services it runs at once (`service_groups`): SPAN_BYTES_PER_REQUEST for each and, besides,
    SPAN_PARTITION_BYTES_PER_REQUEST for every request of `plan`'s largest partition (None: no plan yet, the least
    any plan needs)."""
    if plan is None:
        return MemoryNeed(SPAN_BYTES_PER_REQUEST)
    rates = {s.name: s.rate for s in instance.services}
    return MemoryNeed(SPAN_BYTES_PER_REQUEST,
                      SPAN_PARTITION_BYTES_PER_REQUEST * largest_partition_rate(plan, rates) * duration_s)


def simulate_spans(instance: Instance, plan: Plan, arrivals: ArrivalSpec | Mapping[str, np.ndarray],
                   options: SimOptions, spans: int, deadline: float | None = None) -> SpanCounts | None:
    """`simulate(instance, plan, arrivals, options)`'s requests counted by service and span, without keeping
    records; None when `deadline` (a `time.perf_counter()` instant) passed before the run ended (checked before
    the arrivals are drawn and after each partition: the counts of a part of the plan would be no verdict).
    Drawn from a spec, the arrivals are drawn and run a group of services at a time (`service_groups`: the same
    arrays, routes and batches, so the same counts as one run of all); MemoryShort, before any arrival is drawn,
    when the largest group would not fit in memory (`span_need`)."""
    if deadline is not None and time.perf_counter() >= deadline:
        return None
    slo_ms = np.array([s.slo_ms for s in instance.services], dtype=float)
    tally = SpanTally(instance.service_names, slo_ms, options.duration_s, spans)
    need = span_need(instance, plan, options.duration_s)
    groups: list[list[int] | None] = [None]  # given arrivals: held already, run at once
    if isinstance(arrivals, ArrivalSpec):
        groups = service_groups(instance, plan, options.duration_s, options.routing)
        rates = [s.rate * plan.scale for s in instance.services]
        largest = max(groups, key=lambda g: sum(max(0.0, rates[i]) for i in g))
        check_fits(arrivals, [rates[i] for i in largest], options.duration_s, need)  # before any arrival is drawn
    try:
        for group in groups:
            run_plan(instance, plan, arrivals_of(instance, plan, arrivals, options, need, group),
                     routing=options.routing, noise_cv=options.noise_cv, exec_model=options.exec_model,
                     seed=options.seed, progress=options.progress, window=(0.0, options.duration_s),
                     host=options.host, collect=tally.add, deadline=deadline)
    except SimulationStopped:
        return None
    return tally.counts()
