"""Dev: permutation diagnostic. Replay the executor's order, each batch's factor = (o_k + exec)/model, but the
exec ratios permuted within cells: tenant / tenant x busy-idle / tenant x busy-idle x previous tenant same-other.
Session 16's /tmp/w15/shuffle.py: python -m experiments.dev.exec_vs_sim.shuffle --instance I --plan P
[--pickles DIR] pkl TAG... | csv DIR"""
import sys
from experiments.dev.exec_vs_sim.models import *
from experiments.dev.exec_vs_sim import models as M
from experiments.dev.exec_vs_sim import rule_csv_lib as L
def go(run, seed, K=5):
    b = ratios(run)
    prev_same = np.concatenate([[False], b.ten.to_numpy()[1:] == b.ten.to_numpy()[:-1]])
    o = b.o_s.to_numpy(); model = b.model_ms.to_numpy() / 1e3; r = b.r.to_numpy()
    cells = {'tenant': b.ten.to_numpy(), 'ten*cls': b.ten.to_numpy() * 2 + b.busy.to_numpy(),
             'ten*cls*prev': b.ten.to_numpy() * 4 + b.busy.to_numpy() * 2 + prev_same}
    out = [f'exec {run.summary.p99_ms:.2f}', f"exact {sim(run, HostOverhead(), M.replay(b, (o + r * model) / model), seed).p99_ms / run.summary.p99_ms:.3f}"]
    for name, c in cells.items():
        ps = []
        for k in range(K):
            rng = np.random.default_rng(k); rr = r.copy()
            for v in np.unique(c):
                idx = np.flatnonzero(c == v); rr[idx] = rng.permutation(r[idx])
            ps.append(sim(run, HostOverhead(), M.replay(b, (o + rr * model) / model), seed).p99_ms)
        out.append(f'{name} {np.median(ps) / run.summary.p99_ms:.3f}')
    return ' | '.join(out)
if __name__ == '__main__':
    args = M.setup()
    if args[0] == 'pkl':
        for t in args[1:]:
            print(t, go(load(t), int(t.split('_')[0].rstrip('qf'))), flush=True)
    else:
        d = args[1]
        for seed in L.seeds(d):
            for rep in L.reps(d, seed):
                print(seed, rep, go(L.run(d, seed, rep), seed), flush=True)
