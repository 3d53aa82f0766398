"""Dev: own vs calibration draws (101-point grid, LEVELS, bootstrap; pooled and by class) on captured runs
(session 16's /tmp/w15/cmp2.py): python -m experiments.dev.exec_vs_sim.cmp2 --instance I --plan P --pickles DIR
CALIB_TAG TAG..."""
from experiments.dev.exec_vs_sim.models import *
from experiments.dev.exec_vs_sim import models as M

def main():
    from stsched.simulation.host import LEVELS
    args = M.setup()
    calib_tag, tags = args[0], args[1:]
    cb = ratios(load(calib_tag)); hc = host_of(cb)
    K = 9
    variants = [('q101', lambda b: quant(b)), ('levels', lambda b: quant(b, levels=LEVELS)), ('boot', lambda b: bootstrap(b)),
                ('q101/cls', lambda b: quant(b, True)), ('levels/cls', lambda b: quant(b, True, LEVELS)), ('boot/cls', lambda b: bootstrap(b, True))]
    res = {}
    for tag in tags:
        run = load(tag); ob = ratios(run); ho = host_of(ob)
        ex = run.summary
        print(f'{tag}: exec p99 {ex.p99_ms:.2f}', flush=True)
        for src_name, src, h in (('own', ob, ho), ('cal', cb, hc)):
            for name, mk in variants:
                f = mk(src)
                p = np.array([sim(run, h, f, 2, k + 1).p99_ms for k in range(K)])
                res.setdefault((src_name, name), []).append(np.median(p) / ex.p99_ms)
                print(f'  {src_name} {name:11s} p99/exec median {np.median(p)/ex.p99_ms:.3f} [{p.min()/ex.p99_ms:.3f}-{p.max()/ex.p99_ms:.3f}]  median-of-3 spread {np.ptp([np.median(p[i:i+3]) for i in range(0, K, 3)])/ex.p99_ms:.3f}', flush=True)

if __name__ == '__main__':
    main()
