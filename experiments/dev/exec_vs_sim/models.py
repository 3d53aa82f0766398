"""Dev: offline model comparison on captured executor runs (pickles from capture.py).  Session 16's script
(/tmp/w15/models.py), its paths made arguments: every script here takes `--instance`, `--plan` (the compared
instance and plan) and `--pickles` (the folder of capture.py's run_TAG.pkl) before its own arguments (`setup`)."""
import argparse, pickle, sys, numpy as np, pandas as pd
from types import SimpleNamespace
from stsched.io import load_instance, load_plan
from stsched.executor.host import measure_host, busy_batches
from stsched.simulation import SimOptions, simulate
from stsched.simulation.host import HostOverhead
inst = plan = None  # set by setup()
PICKLES = '.'

def setup(argv=None):
    """Reads --instance, --plan, --pickles; sets this module's inst, plan, PICKLES; returns the other arguments."""
    global inst, plan, PICKLES
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--instance', required=True)
    p.add_argument('--plan', required=True)
    p.add_argument('--pickles', default='.')
    a, rest = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    inst, plan, PICKLES = load_instance(a.instance), load_plan(a.plan), a.pickles
    return rest

def load(tag):
    d = pickle.load(open(f'{PICKLES}/run_{tag}.pkl', 'rb'))
    return SimpleNamespace(**d)

def sim(run, host, factors, seed, k=0):
    opts = SimOptions(duration_s=20, seed=seed, noise_cv=0.0, exec_model='fixed', host=host)
    f = factors
    if factors is not None and k:
        f = lambda pt, n, rng: factors(pt, n, np.random.default_rng([k, seed, 6007, pt.gpu, pt.partition]))
    return simulate(inst, plan, run.arrivals, opts, batch_factors=f).summary

def replay(b, f):
    """Batch factors `f` (one per row of `ratios`'s table, in the executor's order) replayed per tenant in that
    order: row j at global index nb is tenant j's next batch's factor."""
    names = [t.service for t in plan.gpus[0].partitions[0].tenants]
    ten = b.ten.to_numpy()
    def draw(pt, n, rng):
        rows = np.ones((len(names), n)); cnt = [0] * len(names)
        seqs = [f[ten == j] for j in range(len(names))]
        for nb in range(min(n, len(ten))):
            for j in range(len(names)):
                rows[j, nb] = seqs[j][min(cnt[j], len(seqs[j]) - 1)]
            cnt[ten[nb]] += 1
        return np.stack([rows, rows], axis=1)
    return draw

def exact(run):
    """The executor's own batches replayed in its order: factor = (o_k + exec)/model, host none."""
    b = ratios(run)
    return replay(b, (b.o_s.to_numpy() + b.exec_ms.to_numpy() / 1e3) / (b.model_ms.to_numpy() / 1e3))

def ratios(run):
    """per-batch table: service, tenant index, ratio, busy (executor's rule), o_k"""
    b = run.batches.sort_values('start_s', kind='stable').reset_index(drop=True)
    rec = run.records
    ok = np.isfinite(rec.start)
    st, arr = rec.start[ok], rec.arrival[ok]
    o = np.lexsort((arr, st)); st, arr = st[o], arr[o]
    heads = np.concatenate([[True], st[1:] != st[:-1]])
    first = dict(zip(st[heads].tolist(), arr[heads].tolist()))
    a = np.array([first.get(x, x) for x in b.start_s.tolist()])
    busy, ok_ = busy_batches(b.start_s.to_numpy(), b.exec_ms.to_numpy() / 1e3, a)
    names = [t.service for t in plan.gpus[0].partitions[0].tenants]
    b['ten'] = [names.index(s) for s in b.service]
    b['r'] = b.exec_ms / b.model_ms
    b['busy'] = busy
    b['o_s'] = ok_
    return b

def _pool(g, cls, classes):
    """One tenant's ratios to draw from: of its class (back to back / after idle) when `classes` and at least 20."""
    x = g.r.to_numpy()
    if classes:
        xc = g.r[g.busy == cls].to_numpy()
        if len(xc) >= 20: x = xc
    return x

def bootstrap(b, classes=False):
    k = b.ten.max() + 1
    def draw(pt, n, rng):
        out = np.empty((k, 2, n))
        for j in range(k):
            g = b[b.ten == j]
            for c, cls in enumerate((True, False)):
                out[j, c] = rng.choice(_pool(g, cls, classes), n)
        return out
    return draw

def quant(b, classes=False, levels=None):
    levels = np.linspace(0, 100, 101) if levels is None else np.asarray(levels)
    k = b.ten.max() + 1
    grid = levels / 100
    def draw(pt, n, rng):
        out = np.empty((k, 2, n))
        for j in range(k):
            g = b[b.ten == j]
            for c, cls in enumerate((True, False)):
                q = np.percentile(_pool(g, cls, classes), levels)
                out[j, c] = np.interp(rng.random(n), grid, q)
        return out
    return draw

def host_of(b):
    gap = b.o_s[b.busy].mean(); wake = max(0.0, b.o_s[~b.busy].mean() - gap)
    return HostOverhead(float(gap), float(wake), 'dev')
