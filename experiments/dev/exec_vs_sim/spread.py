"""Session 17: where the executor's run-to-run p99 spread comes from, on an experiment folder's saved runs.

    python -m experiments.dev.exec_vs_sim.spread DIR [DIR ...]   (DIR: an `exec_vs_sim` results folder with
                                                                 batches.csv.gz and requests.csv.gz)

Per executor run (calibration runs too): requests, p99, and the top 1 % of its requests (latency >= p99) explained:
the mean latency of those requests split into the table's work done while they waited (batches at the instance's
times), the excess of the batches over the table (`diffuse`: batches up to `STALL_MS` over it; `stall`: a single
batch more than that over it), and the time with no batch running (host: dispatch gaps, wake-ups); the number of
clusters they come in (arrivals more than 50 ms apart start a new one); the share of 100 ms windows in a slow spell
(`stsched.executor.accounting.slow_share`) and, when the rows have them, the off-core share, preempted batches and
page faults per batch; per folder, the batches that took page faults, how many each, and their median measured /
table ratio against the others'. Then across runs: the correlation of p99 with the slow share, whether the slow
windows of repetitions of the same arrivals line up (per-window slowness correlation between the repetitions of a
seed), how long the spells last, whether a run's two halves have the same share of them, how much slower a batch
runs the longer its partition was idle before it (the worker slept: on these 2-vCPU guests the idle vCPU halts) and,
inside and outside slow windows, back to back or after idling, and the p99's sampling error: a bootstrap of one
run's requests (independent draws: too optimistic, the top 1 % comes in clusters) and a block bootstrap of its
seconds (1 s blocks of arrivals, the spells mostly inside one), each as the 5-95 % interval of the p99 over `BOOT`
resamples relative to the run's p99, at the run's own length and, from the same blocks, at three times it (what a
run 3 x as long would give if the host behaved the same), against the spread of log p99 between repetitions of the
same arrivals.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd

from stsched.executor.accounting import FAST_QUANTILE, SLOW_FACTOR, WINDOW_S, BatchAccounting, slowness

STALL_MS = 2.0
BOOT = 400
BLOCK_S = 1.0


def p99(lat: np.ndarray) -> float:
    """The summary's p99 (`stsched.simulation.summary`: the lower empirical quantile)."""
    s = np.sort(lat)
    return float(s[min(len(s) - 1, max(0, math.ceil(0.99 * len(s)) - 1))])


def top_split(b: pd.DataFrame, r: pd.DataFrame) -> dict[str, float]:
    """Mean latency (ms) of the run's top 1 % split into table work, diffuse excess, stall excess, no batch."""
    b = b.sort_values("start_s")
    s = b["start_s"].to_numpy()
    e = s + b["exec_ms"].to_numpy() / 1e3
    m = b["model_ms"].to_numpy() / 1e3
    x = np.clip(e - s - m, 0.0, None)
    stall = np.where(x > STALL_MS / 1e3, x, 0.0)
    parts = {"table": m, "diffuse": x - stall, "stall": stall}
    cum = {k: np.concatenate([[0.0], np.cumsum(v)]) for k, v in parts.items()}
    lat = (r["finish_s"] - r["arrival_s"]).to_numpy()
    top = r[lat >= p99(lat)]
    tot = dict.fromkeys(["latency", *parts, "no batch"], 0.0)
    for a, f in zip(top["arrival_s"].to_numpy(), top["finish_s"].to_numpy()):
        i0, i1 = np.searchsorted(e, a, side="right"), np.searchsorted(s, f - 1e-12, side="right")
        for k, v in parts.items():
            share = cum[k][i1] - cum[k][i0]
            if i0 < len(s) and s[i0] < a:  # the batch running at the arrival counts from the arrival on
                share -= v[i0] * (a - s[i0]) / (e[i0] - s[i0])
            tot[k] += share
        busy = (np.minimum(e[i0:i1], f) - np.maximum(s[i0:i1], a)).clip(0.0).sum()
        tot["no batch"] += (f - a) - busy
        tot["latency"] += f - a
    t = np.sort(top["arrival_s"].to_numpy())
    out = {k: 1e3 * v / len(top) for k, v in tot.items()}
    out["clusters"] = 1 + int((np.diff(t) > 0.05).sum())
    out["stalls_in_run"] = int((stall > 0).sum())
    return out


def boot(r: pd.DataFrame, duration: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """5-95 % interval widths of the p99 relative to the run's p99: bootstrap of the requests, of the 1 s blocks at
    the run's length, of the 1 s blocks at 3 x its length."""
    lat = (r["finish_s"] - r["arrival_s"]).to_numpy()
    ref = p99(lat)
    req = [p99(rng.choice(lat, len(lat))) for _ in range(BOOT)]
    block = np.minimum(np.floor(r["arrival_s"].to_numpy() / BLOCK_S), math.ceil(duration / BLOCK_S) - 1)
    groups = [lat[block == k] for k in range(int(math.ceil(duration / BLOCK_S)))]

    def blocks(n: int) -> list[float]:
        return [p99(np.concatenate([groups[k] for k in rng.integers(0, len(groups), n)])) for _ in range(BOOT)]

    def width(v: list[float]) -> float:
        lo, hi = np.percentile(v, [5, 95])
        return float((hi - lo) / ref)
    return width(req), width(blocks(len(groups))), width(blocks(3 * len(groups)))


IDLE_BINS_MS = (-1.0, 0.05, 0.5, 1.0, 2.0, 5.0, 1e9)


def after_idle(b: pd.DataFrame) -> pd.DataFrame:
    """One run's batches: each one's slowness (measured / table over its tenant's fast level in the run, as
    `stsched.executor.accounting`) and the time its partition was idle before it, ms (0: back to back)."""
    b = b.sort_values("start_s")
    r = b["exec_ms"] / b["model_ms"]
    norm = r / r.groupby(b["service"]).transform(lambda v: v.quantile(FAST_QUANTILE))
    end = b["start_s"] + b["exec_ms"] / 1e3
    idle = ((b["start_s"] - end.shift(1)).fillna(0.0) * 1e3).clip(lower=0.0)
    return pd.DataFrame({"service": b["service"], "slowness": norm, "idle_ms": idle})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--duration", type=float, default=None, help="arrival window, s (default: the last arrival)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(17)
    rows, align, idles, stall_t, pair = [], [], [], [], []
    for d in args.dirs:
        B, R = pd.read_csv(f"{d}/batches.csv.gz"), pd.read_csv(f"{d}/requests.csv.gz")
        dur = args.duration or math.ceil(R["arrival_s"].max())
        slow = {}
        for (seed, rep), r in R.groupby(["seed", "rep"]):
            b = B[(B["seed"] == seed) & (B["rep"] == rep)]
            acc = BatchAccounting.of(b)
            slow[(seed, rep)] = slowness(b).droplevel([0, 1])
            stall_t.append(b.loc[b["exec_ms"] - b["model_ms"] > STALL_MS, "start_s"].to_numpy())
            per = after_idle(b).assign(window=np.floor(b["start_s"] / WINDOW_S))
            per = per.groupby(["window", "service"])["slowness"].median().unstack()
            if per.shape[1] == 2:
                pair.append(per.corr().iloc[0, 1])
            flags = slow[(seed, rep)] > SLOW_FACTOR
            half = flags.index.to_numpy() < dur / 2 / WINDOW_S
            inside = flags.index.to_numpy() < dur / WINDOW_S
            halves = (float(flags[half].mean()), float(flags[~half & inside].mean()))
            a = after_idle(b)
            window = np.floor(b.loc[a.index, "start_s"] / WINDOW_S).astype(int).to_numpy()
            a["in_spell"] = slow[(seed, rep)].reindex(window).to_numpy() > SLOW_FACTOR
            idles.append(a)
            lat = (r["finish_s"] - r["arrival_s"]).fillna(np.inf).to_numpy()  # never served: infinite
            if not math.isfinite(p99(lat)):  # saturated: more than 1 % never served, no tail to explain
                rows.append({"dir": d, "seed": seed, "rep": rep, "requests": len(r), "p99_ms": math.inf,
                             "slow_share": round(acc.slow_share, 3), "slow_1st": halves[0], "slow_2nd": halves[1]})
                continue
            rb, bb, b3 = boot(r, dur, rng)
            rows.append({"dir": d, "seed": seed, "rep": rep, "requests": len(r), "p99_ms": round(1e3 * p99(lat), 2),
                         **{k: round(v, 2) for k, v in top_split(b, r).items()},
                         "slow_share": round(acc.slow_share, 3), "slow_1st": round(halves[0], 3),
                         "slow_2nd": round(halves[1], 3), "off_core": round(acc.off_core_share, 4),
                         "preempted": round(acc.preempted_share, 4), "faults_pb": round(acc.faults_per_batch, 3),
                         "boot_req": round(rb, 3), "boot_block": round(bb, 3), "boot_block_3x": round(b3, 3)})
        for seed in sorted({s for s, rep in slow if rep >= 0}):
            reps = [slow[k] for k in sorted(slow) if k[0] == seed]
            align += [reps[i].corr(reps[j]) for i in range(len(reps)) for j in range(i + 1, len(reps))]
        runs = []
        for s in slow.values():
            flag = (s > SLOW_FACTOR).to_numpy()
            edges = np.flatnonzero(np.diff(np.concatenate([[0], flag.astype(int), [0]])))
            runs += list(edges[1::2] - edges[::2])
        lens = np.array(runs)
        if len(lens):
            print(f"{d}: {len(lens)} slow spells, length (100 ms windows) median {np.median(lens):g}, p90 "
                  f"{np.percentile(lens, 90):g}, max {lens.max()}")
        if "faults" in B and (B["faults"] > 0).any():
            hit = B["faults"] > 0
            ratio = B["exec_ms"] / B["model_ms"]
            per = pd.DataFrame({"with": ratio[hit].groupby(B["service"]).median(),
                                "without": ratio[~hit].groupby(B["service"]).median()})
            print(f"{d}: {int(hit.sum())} of {len(B)} batches took page faults (per such batch: median "
                  f"{B.loc[hit, 'faults'].median():g}, max {B.loc[hit, 'faults'].max():g}); median measured / table "
                  f"with and without: " + ", ".join(f"{s} {r['with']:.3f} / {r['without']:.3f}"
                                                    for s, r in per.iterrows()))
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    print(df.drop(columns=["dir"]).to_string(index=False))
    df = df[np.isfinite(df["p99_ms"])]
    print(f"p99 vs slow share over {len(df)} runs: Pearson {df['p99_ms'].corr(df['slow_share']):.3f}, Spearman "
          f"{df['p99_ms'].corr(df['slow_share'], method='spearman'):.3f}")
    if align:
        print(f"per-window slowness correlation between repetitions of the same arrivals: median "
              f"{np.median(align):.2f} (range {min(align):.2f}..{max(align):.2f}, {len(align)} pairs)")
    if pair:
        print(f"per-window slowness correlation between a run's two tenants: {min(pair):.2f}..{max(pair):.2f}")
    t = np.concatenate(stall_t) if stall_t else np.empty(0)
    for period in (1.0, 0.1, 0.004):
        print(f"stalls ({len(t)}) by phase of {period:g} s (10 bins): "
              f"{np.histogram(t % period, bins=10, range=(0, period))[0].tolist()}")
    if len(df):  # none when every run saturated: no tail to explain
        share = df[["table", "diffuse", "stall", "no batch"]].div(df["latency"], axis=0)
        print("top 1 % latency split, median share over runs: "
              + ", ".join(f"{k} {v:.2f}" for k, v in share.median().items()))
        print(f"slow share of a run's first and second half: Pearson {df['slow_1st'].corr(df['slow_2nd']):.2f}; its "
              f"spread over runs {df['slow_share'].std(ddof=0):.3f}, within runs (half difference / 2) "
              f"{(df['slow_1st'] - df['slow_2nd']).std(ddof=0) / 2:.3f}")
        comp = df[df["rep"] >= 0]
        logs = np.log(comp["p99_ms"].to_numpy())
        dev = logs - comp.groupby(["dir", "seed"])["p99_ms"].transform(lambda v: np.log(v).mean()).to_numpy()
        dof = len(comp) - comp.groupby(["dir", "seed"]).ngroups
        if dof > 0:
            print(f"SD of log p99 between repetitions of the same arrivals (pooled over seeds, {dof} dof): "
                  f"{math.sqrt((dev ** 2).sum() / dof):.3f}; the 1 s block bootstrap's (5-95 % width / 3.29, median "
                  f"over runs): {df['boot_block'].median() / 3.29:.3f} at the run's length, "
                  f"{df['boot_block_3x'].median() / 3.29:.3f} at 3 x")
    idle = pd.concat(idles)
    by = idle.groupby([pd.cut(idle["idle_ms"], IDLE_BINS_MS), "service"], observed=True)["slowness"]
    print(f"batch slowness by the partition's idle time before it (ms; median, share > {SLOW_FACTOR}, batches):")
    print(by.agg(["median", lambda v: (v > SLOW_FACTOR).mean(), "size"]).round(3).unstack().to_string())
    idle["back_to_back"] = idle["idle_ms"] <= IDLE_BINS_MS[1]
    print("batch slowness (median, batches) inside and outside slow windows, back to back or after idling:")
    print(idle.groupby(["in_spell", "back_to_back", "service"])["slowness"].agg(["median", "size"]).round(3)
          .unstack().to_string())
    if len(df):  # none when every run saturated: no tail to explain
        print(f"p99 5-95 % interval / p99, median over runs: requests {df['boot_req'].median():.3f}, 1 s blocks "
              f"{df['boot_block'].median():.3f}, 1 s blocks at 3 x the length {df['boot_block_3x'].median():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
