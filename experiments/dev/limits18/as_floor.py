"""Where `stsched adapt`'s address-space floor comes from (docs/RESULTS.md, "Limits and faults", session 18, item 2;
`stsched.cli.ADDRESS_SPACE_FLOORS`): under each address-space limit (`prlimit --as`, set here with RLIMIT_AS on the
child), what becomes of (a) the import of `adapt`'s parser alone and (b) the smallest `adapt` run (r2: 2 services
on 2 GPUs, seed 3, 0.05 h, plan-only, heuristic), the floor itself set aside.  One line per run: the environment,
the limit, the exit status (`hang` when killed after TIMEOUT_S), wall seconds, VmPeak when it got that far, the
last other line of stderr, CPU seconds.

    PYTHONPATH=. python experiments/dev/limits18/as_floor.py [--one-thread] [--run] MIB [MIB ...]

--one-thread: OPENBLAS_NUM_THREADS=1 MALLOC_ARENA_MAX=1 (the least that OpenBLAS and malloc map); --run: (b), else
(a).  The child runs under `nice -n 19`."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 25.0

PEAK = "print(open('/proc/self/status').read().split('VmPeak:')[1].split()[0], 'kB VmPeak', file=sys.stderr)"
IMPORT = f"import sys; from stsched import cli; cli.build_parser(cli.command_module(['adapt'])); {PEAK}"
RUN = (f"import sys; from stsched import cli; cli.ADDRESS_SPACE_FLOORS.clear(); code = cli.main(sys.argv[1:]); "
       f"{PEAK}; sys.exit(code)")


def one(code: str, args: list[str], limit_mib: int, env: dict[str, str]) -> str:
    cap = limit_mib * 2 ** 20

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    t0 = time.perf_counter()
    p = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", code, *args], env=env, preexec_fn=limit,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=TIMEOUT_S)
        status = str(p.returncode)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        status = "hang"
    wall = time.perf_counter() - t0
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    peak = [ln for ln in lines if ln.endswith("kB VmPeak")]
    said = [ln for ln in lines if not ln.endswith("kB VmPeak")]
    return f"{status:>4} {wall:6.1f} s wall  {' '.join(peak)}  {(said[-1] if said else '')[:150]}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mib", type=int, nargs="+")
    ap.add_argument("--one-thread", action="store_true")
    ap.add_argument("--run", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    if a.one_thread:
        env.update(OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="1")
    with tempfile.TemporaryDirectory() as d:
        args: list[str] = []
        if a.run:
            inst = os.path.join(d, "r2.json")
            subprocess.run([sys.executable, "-m", "stsched.cli", "scenario", "random", "--services", "2", "--gpus",
                            "2", "--seed", "3", "--out", inst], check=True, env=env, stdout=subprocess.DEVNULL)
            args = ["adapt", inst, "--trace", "azure-functions-2019", "--hours", "0.05", "--plan-only",
                    "--adapt-solver", "heuristic", "--time-limit", "5"]
        for mib in a.mib:
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            line = one(RUN if a.run else IMPORT, args, mib, env)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
            print(f"{'one-thread' if a.one_thread else 'default':<10} {'run' if a.run else 'import':<6} "
                  f"{mib:>5} MiB  {line}  ({cpu:.1f} s CPU)", flush=True)


if __name__ == "__main__":
    main()
