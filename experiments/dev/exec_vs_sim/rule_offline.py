"""Dev: exec_vs_sim's own rule on captured runs (session 16's /tmp/w15/rule_offline.py):
python -m experiments.dev.exec_vs_sim.rule_offline --instance I --plan P --pickles DIR CALIB_TAG SEED RUN_TAG..."""
from experiments.dev.exec_vs_sim.models import *
from experiments.dev.exec_vs_sim import models as M

def main():
    from experiments.exec_vs_sim import _rule, SIM_MODELS
    args = M.setup()
    calib_tag, seed, tags = args[0], int(args[1]), args[2:]
    c = load(calib_tag)
    calib = measure_host(c, M.inst, M.plan, 'fixed')
    runs = [load(t) for t in tags]
    for model in list(SIM_MODELS):
        if SIM_MODELS[model][0] != 'calib': continue
        r = _rule(seed, runs, calib, M.inst, M.plan, 20.0, model)
        print(f"{model:24s} exec p99 median {r['exec_p99_median_ms']:.2f} [{r['exec_p99_min_ms']:.2f}-{r['exec_p99_max_ms']:.2f}] sim {r['sim_p99_median_ms']:.2f} ratio {r['p99_vs_exec']} d_att {r['d_attainment_pts']} pass {r['pass']}")

if __name__ == '__main__':
    main()
