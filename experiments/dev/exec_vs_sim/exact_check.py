"""Dev: each captured run's own batches replayed in the executor's order (factor = (o_k + exec) / model, no host
model) against the executor (session 16's /tmp/w15/exact_check.py):
python -m experiments.dev.exec_vs_sim.exact_check --instance I --plan P --pickles DIR TAG..."""
from experiments.dev.exec_vs_sim.models import *
from experiments.dev.exec_vs_sim import models as M

def main():
    for tag in M.setup():
        run = load(tag)
        s = sim(run, HostOverhead(), exact(run), 0)
        ex = run.summary
        print(tag, 'exec att %.4f p50 %.2f p99 %.2f' % (ex.slo_attainment, ex.p50_ms, ex.p99_ms),
              '| exact replay att %.4f p50 %.2f p99 %.2f' % (s.slo_attainment, s.p50_ms, s.p99_ms))

if __name__ == '__main__':
    main()
