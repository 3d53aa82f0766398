"""Dev: i.i.d. draws conditioned on the batch's state in the simulator: (after idling or back to back) x (previous
batch of the partition of the same tenant or another). Monkeypatches the engine's round robin (2 tenants) when run,
not when imported.  Session 16's /tmp/w15/state_model.py, written against that session's engine (its
`_round_robin` signature): python -m experiments.dev.exec_vs_sim.state_model --instance I --plan P
[--pickles DIR] pkl CALIB_TAG TAG... | csv DIR"""
import sys, math
from experiments.dev.exec_vs_sim.models import *
from experiments.dev.exec_vs_sim import models as M
from stsched.simulation.host import LEVELS
import stsched.simulation.engine as eng
from experiments.dev.exec_vs_sim import rule_csv_lib as L
STATE = {}
def rr(arrs, es, bs, t, horizon, noise, ptr=0, gap=0.0, wake=0.0, idle=None):
    F = STATE['F']  # F[j][state] -> array of factors; state = 2*fresh + same
    k = len(arrs); ns = [len(a) for a in arrs]; heads = [0] * k
    tenants, starts, counts, durs = [], [], [], []
    end = t; fresh = False; prev = -1; nb = 0
    while True:
        chosen = -1
        for j in range(k):
            i = (ptr + j) % k
            if heads[i] < ns[i] and arrs[i][heads[i]] <= t:
                chosen = i; break
        if chosen < 0:
            nxt = min((arrs[i][heads[i]] for i in range(k) if heads[i] < ns[i]), default=math.inf)
            if nxt == math.inf: break
            t = nxt + wake; fresh = True
            if t >= horizon: break
            continue
        if t >= horizon: break
        a = arrs[chosen]; h = heads[chosen]; hi = min(h + bs[chosen], ns[chosen])
        from bisect import bisect_right
        m = bisect_right(a, t, h, hi) - h
        st = 2 * int(fresh) + int(prev == chosen)
        d = es[chosen][m] * F[chosen][st][nb] + gap
        nb += 1; fresh = False; prev = chosen
        tenants.append(chosen); starts.append(t); counts.append(m); durs.append(d)
        heads[chosen] = h + m; t += d; end = t; ptr = (chosen + 1) % k
    return tenants, starts, counts, durs, end, ptr
def state_factors(b, n, rng):
    prev_same = np.concatenate([[False], b.ten.to_numpy()[1:] == b.ten.to_numpy()[:-1]])
    st = 2 * (~b.busy.to_numpy()).astype(int) + prev_same.astype(int)
    grid = np.asarray(LEVELS) / 100
    F = []
    for j in range(b.ten.max() + 1):
        rows = []
        for s in range(4):
            x = b.r[(b.ten == j).to_numpy() & (st == s)].to_numpy()
            if len(x) < 20: x = b.r[b.ten == j].to_numpy()
            rows.append(np.interp(rng.random(n), grid, np.percentile(x, LEVELS)))
        F.append(rows)
    return F
def go(run, calib_b, seed, K=5):
    ob = ratios(run); out = [f'exec {run.summary.p99_ms:.2f}']
    for name, src in (('own', ob), ('cal', calib_b)):
        h = host_of(src); ps = []
        for k in range(K):
            STATE['F'] = state_factors(src, 30000, np.random.default_rng(k))
            ps.append(sim(run, h, lambda pt, n, rng: np.ones((2, 2, n)), seed).p99_ms)
        out.append(f'{name} state {np.median(ps) / run.summary.p99_ms:.3f}')
    return ' | '.join(out)
def main():
    eng._round_robin = rr
    args = M.setup()
    if args[0] == 'pkl':
        cal = ratios(load(args[1]))
        for t in args[2:]:
            print(t, go(load(t), cal, int(t.split('_')[0].rstrip('qf'))), flush=True)
    else:
        d = args[1]
        for seed in L.seeds(d):
            cal = ratios(L.run(d, 100 + seed, -1))
            for rep in L.reps(d, seed):
                print(seed, rep, go(L.run(d, seed, rep), cal, seed), flush=True)

if __name__ == '__main__':
    main()
