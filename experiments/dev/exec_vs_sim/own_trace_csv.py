"""Dev: the own/trace+host row (each run's own ratios replayed in its own order) on an exec_vs_sim output folder's
saved runs (session 16's /tmp/w15/own_trace_csv.py): python -m experiments.dev.exec_vs_sim.own_trace_csv
--instance I --plan P DIR"""
from experiments.dev.exec_vs_sim.models import *
from experiments.dev.exec_vs_sim import models as M
from experiments.dev.exec_vs_sim import rule_csv_lib as L

def main():
    from experiments.exec_vs_sim import model_inputs
    d = M.setup()[0]
    for seed in L.seeds(d):
        for rep in L.reps(d, seed):
            run = L.run(d, seed, rep); own = measure_host(run, M.inst, M.plan, 'fixed')
            o, f = model_inputs('own/trace+host', own, own)
            s = sim(run, o, f, seed)
            print(seed, rep, 'exec %.2f own/trace+host %.2f (%.3f)' % (run.summary.p99_ms, s.p99_ms, s.p99_ms / run.summary.p99_ms))

if __name__ == '__main__':
    main()
