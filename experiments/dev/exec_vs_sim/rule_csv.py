"""Dev: the pass rule recomputed from an exec_vs_sim output folder (batches.csv.gz, requests.csv.gz, rows.csv)
with whatever code is on PYTHONPATH (session 16's /tmp/w15/rule_csv.py, reading the folder through rule_csv_lib):
python -m experiments.dev.exec_vs_sim.rule_csv --instance I --plan P DIR"""
import sys
from experiments.dev.exec_vs_sim import models as M
from experiments.dev.exec_vs_sim import rule_csv_lib as L

def main():
    from stsched.executor.host import measure_host
    from experiments.exec_vs_sim import _rule, RULE_MODELS
    d = M.setup()[0]
    for seed in L.seeds(d):
        calib = measure_host(L.run(d, 100 + seed, -1), M.inst, M.plan, 'fixed')
        runs = [L.run(d, seed, k) for k in L.reps(d, seed)]
        for m in RULE_MODELS:
            r = _rule(seed, runs, calib, M.inst, M.plan, 20.0, m)
            print(seed, f"{m:20s} exec {r['exec_p99_median_ms']} sim {r['sim_p99_median_ms']} ratio {r['p99_vs_exec']} d_att {r['d_attainment_pts']} pass {r['pass']}")

if __name__ == '__main__':
    main()
