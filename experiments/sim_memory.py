"""Peak memory of the simulator per request: what `stsched.simulation.arrivals.BYTES_PER_REQUEST` is sized from.

    python -m experiments.sim_memory                  # 0.6 M and 1.8 M Poisson requests (about 30 s)
    stsched experiment sim_memory --quick             # 0.6 M requests only
    python -m experiments.sim_memory --records        # also: records written to CSV (about 3 min)
    python -m experiments.sim_memory --spans          # also: the attainment loop's span simulation (about 1 min)

Instance: gpulet's mix m2 on 2 GPUs (`stsched.scenarios.gpulet_mix("m2", 2)`, 30 req/s in all), its heuristic
min-gpus plan; each row simulates D seconds of Poisson arrivals in a fresh process (so that earlier rows do not
hide the peak) and reports the growth of the process's peak resident memory (ru_maxrss, after a 1-second warm-up
simulation) divided by the requests simulated.  The simulator refuses a run whose arrivals would exceed the memory
available at BYTES_PER_REQUEST bytes each (rounded up from these rows, never down).  Printed as a table; no files.

`--records` adds rows that also write the per-request records (`stsched simulate --records`,
`stsched.simulation.records_csv`) to a temporary CSV file: the event simulator (its peak must stay within
BYTES_PER_REQUEST: the records are written in chunks) and the streaming simulator on 1 shard in process and on 2
forked shards (which keeps every record in memory: its peak, this process's growth plus the largest worker's, must
stay within STREAM_RECORD_BYTES), and the CSV's bytes per row besides the service name (at least CSV_ROW_BYTES).

`--spans` adds rows of `stsched.simulation.span_counts.simulate_spans` (no records; the attainment loop's), whose
refusal counts SPAN_BYTES_PER_REQUEST for every request and SPAN_PARTITION_BYTES_PER_REQUEST for every request of
the plan's largest partition (`span_need`), the first for the requests of the largest group of services drawn and
run at once (`service_groups`): gpulet m2 (one partition holds every request: the second term) and a random
instance of 256 services on 128 GPUs, seed 7 (its largest partition holds about 1 % of the requests), with every
service in one group (`-whole`: the first term) and in the simulator's own groups; each row's peak growth must stay
within `span_need`'s estimate for its plan, window and largest group.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp

from experiments.common import Study, markdown_table, run_study, study_args

STUDY = Study("sim_memory", "simulator peak memory per request (sizes the refusal of runs that do not fit)",
              typical="30 s", quick="0.6 M requests only")


def _measure(duration_s: float, queue) -> None:
    import resource

    from stsched.registry import SolveOptions, run_solver
    from stsched.scenarios import gpulet_mix
    from stsched.simulation import ArrivalSpec, SimOptions, simulate

    inst = gpulet_mix("m2", 2)
    plan = run_solver("heuristic", inst, SolveOptions()).result.plan
    simulate(inst, plan, ArrivalSpec(), SimOptions(duration_s=1.0))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = simulate(inst, plan, ArrivalSpec(), SimOptions(duration_s=duration_s)).summary.requests
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"duration_s": duration_s, "requests": n, "bytes_per_request": round((peak - base) * 1024 / n, 1)})


def _measure_records(duration_s: float, engine: str, queue) -> None:
    """One row: simulate with records and write them to a temporary CSV; peak growth per request."""
    import os
    import resource
    import tempfile

    from stsched.registry import SolveOptions, run_solver
    from stsched.scenarios import gpulet_mix
    from stsched.simulation import ArrivalSpec, SimOptions, simulate
    from stsched.simulation.records_csv import write_records_csv
    from stsched.simulation.stream import StreamOptions, simulate_stream

    inst = gpulet_mix("m2", 2)
    plan = run_solver("heuristic", inst, SolveOptions()).result.plan
    shards = {"event": 0, "stream-1": 1, "stream-2": 2}[engine]

    def run(d: float):
        if shards == 0:
            return simulate(inst, plan, ArrivalSpec(), SimOptions(duration_s=d)).records
        return simulate_stream(inst, plan, StreamOptions(duration_s=d, shards=shards, records=True)).records

    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "records.csv")
        write_records_csv(f, run(1.0))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        records = run(duration_s)
        write_records_csv(f, records)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if shards > 1 else 0
        n = len(records)
        names = sum(len(records.services[i]) for i in records.service) / n
        size = os.path.getsize(f)
    queue.put({"engine": engine, "duration_s": duration_s, "requests": n,
               "bytes_per_request": round((peak - base + child) * 1024 / n, 1),
               "csv_bytes_per_row_besides_name": round(size / n - names, 1)})


def _measure_spans(duration_s: float, which: str, queue) -> None:
    """One row of `simulate_spans`: peak growth per request, and `span_need`'s estimate for the plan, the window and
    its largest group of services ("whole": all services in one group, as before groups)."""
    import resource

    from stsched.registry import SolveOptions, run_solver
    from stsched.scenarios import gpulet_mix, random_instance
    from stsched.simulation import ArrivalSpec, SimOptions
    from stsched.simulation import span_counts

    if which.endswith("whole"):
        span_counts.GROUP_REQUESTS = 10 ** 15
    inst = gpulet_mix("m2", 2) if which == "m2" else random_instance(256, 128, 7)
    plan = run_solver("heuristic", inst, SolveOptions()).result.plan
    span_counts.simulate_spans(inst, plan, ArrivalSpec(), SimOptions(duration_s=1.0), 10)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = span_counts.simulate_spans(inst, plan, ArrivalSpec(), SimOptions(duration_s=duration_s), 10)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = int(counts.requests.sum())
    need = span_counts.span_need(inst, plan, duration_s)
    rates = [x.rate * plan.scale for x in inst.services]
    groups = span_counts.service_groups(inst, plan, duration_s, "interleave")
    group = max(sum(rates[i] for i in g) for g in groups) * duration_s
    busiest = span_counts.largest_partition_rate(plan, {x.name: x.rate for x in inst.services}) * duration_s
    estimate = group * need.bytes_per_request + need.fixed_bytes
    queue.put({"instance": which, "duration_s": duration_s, "requests": n, "groups": len(groups),
               "largest_group": round(group), "largest_partition": round(busiest),
               "bytes_per_request": round((peak - base) * 1024 / n, 1),
               "estimate_bytes_per_request": round(estimate / n, 1), "within": (peak - base) * 1024 <= estimate})


def _spawned(target, *args) -> dict:
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=target, args=(*args, q))
    p.start()
    row = q.get()
    p.join()
    return row


def main(argv: list[str] | None = None) -> int:
    from stsched.simulation.arrivals import BYTES_PER_REQUEST
    from stsched.simulation.records_csv import CSV_ROW_BYTES, STREAM_RECORD_BYTES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", action="store_true",
                    help="also rows that write the records to CSV (event and streaming simulators)")
    ap.add_argument("--spans", action="store_true",
                    help="also rows of the attainment loop's span simulation (no records), against span_need")
    args = study_args(ap, argv, quick="0.6 M requests only", grid=False)
    durations = (20_000.0,) if args.quick else (20_000.0, 60_000.0)
    rows = [_spawned(_measure, d) for d in durations]
    print(markdown_table(rows, ["duration_s", "requests", "bytes_per_request"]))
    ok = all(r["bytes_per_request"] <= BYTES_PER_REQUEST for r in rows)
    print(f"\nBYTES_PER_REQUEST = {BYTES_PER_REQUEST} (the largest row rounded up: {'ok' if ok else 'TOO SMALL'})")
    if args.records:
        rec = [_spawned(_measure_records, d, e) for e in ("event", "stream-1", "stream-2") for d in durations]
        print("\nwith --records (written to a temporary CSV file):\n")
        print(markdown_table(rec, ["engine", "duration_s", "requests", "bytes_per_request",
                                   "csv_bytes_per_row_besides_name"]))
        limits = {"event": BYTES_PER_REQUEST, "stream-1": STREAM_RECORD_BYTES, "stream-2": STREAM_RECORD_BYTES}
        rec_ok = all(r["bytes_per_request"] <= limits[r["engine"]] for r in rec)
        csv_ok = all(r["csv_bytes_per_row_besides_name"] >= CSV_ROW_BYTES for r in rec)
        print(f"\nevent <= BYTES_PER_REQUEST {BYTES_PER_REQUEST}, stream <= STREAM_RECORD_BYTES "
              f"{STREAM_RECORD_BYTES}: {'ok' if rec_ok else 'TOO SMALL'}; CSV rows >= CSV_ROW_BYTES {CSV_ROW_BYTES} "
              f"besides the name: {'ok' if csv_ok else 'TOO LARGE'}")
        ok = ok and rec_ok and csv_ok
    if args.spans:
        from stsched.simulation.arrivals import SPAN_BYTES_PER_REQUEST, SPAN_PARTITION_BYTES_PER_REQUEST

        grid = (("m2", durations), ("random-256-whole", (30.0, 90.0)), ("random-256", (30.0, 90.0)))
        spans = [_spawned(_measure_spans, d, which) for which, ds in grid for d in (ds[:1] if args.quick else ds)]
        print("\nspan simulation (no records; the attainment loop's; -whole: every service in one group):\n")
        print(markdown_table(spans, ["instance", "duration_s", "requests", "groups", "largest_group",
                                     "largest_partition", "bytes_per_request", "estimate_bytes_per_request",
                                     "within"]))
        spans_ok = all(r["within"] for r in spans)
        print(f"\nSPAN_BYTES_PER_REQUEST {SPAN_BYTES_PER_REQUEST} + SPAN_PARTITION_BYTES_PER_REQUEST "
              f"{SPAN_PARTITION_BYTES_PER_REQUEST} per request of the largest partition: "
              f"{'ok' if spans_ok else 'TOO SMALL'}")
        ok = ok and spans_ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(run_study(main))
