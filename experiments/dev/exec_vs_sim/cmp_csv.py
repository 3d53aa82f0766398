"""Dev: own vs calibration draws on an exec_vs_sim output folder's saved runs (session 16's /tmp/w15/cmp_csv.py
and cmp_csv_cls.py, one script): the 101-point grid, LEVELS and bootstrap, or with --classes LEVELS pooled and
by class: python -m experiments.dev.exec_vs_sim.cmp_csv --instance I --plan P [--classes] DIR"""
from experiments.dev.exec_vs_sim.models import *
from experiments.dev.exec_vs_sim import models as M
from experiments.dev.exec_vs_sim import rule_csv_lib as L

def main():
    from stsched.simulation.host import LEVELS
    args = M.setup()
    classes = '--classes' in args
    d = [a for a in args if a != '--classes'][0]
    variants = ((('levels', lambda b: quant(b, levels=LEVELS)), ('levels/cls', lambda b: quant(b, True, LEVELS)))
                if classes else
                (('q101', lambda b: quant(b)), ('levels', lambda b: quant(b, levels=LEVELS)), ('boot', lambda b: bootstrap(b))))
    K = 6
    for seed in L.seeds(d):
        cb = ratios(L.run(d, 100 + seed, -1)); hc = host_of(cb)
        for rep in L.reps(d, seed):
            run = L.run(d, seed, rep); ob = ratios(run); ho = host_of(ob)
            ex = run.summary
            out = []
            for src_name, src, h in (('own', ob, ho), ('cal', cb, hc)):
                for name, mk in variants:
                    p = np.array([sim(run, h, mk(src), seed, k + 1).p99_ms for k in range(K)])
                    out.append(f'{src_name} {name} {np.median(p)/ex.p99_ms:.3f}')
            print(seed, rep, f'exec {ex.p99_ms:.2f}', ' | '.join(out), flush=True)

if __name__ == '__main__':
    main()
