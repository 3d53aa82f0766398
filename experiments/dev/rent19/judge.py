"""Candidate adaptive points judged against the default's 20-window rows (issue 18, session 19): per window, each
candidate's reconfigurations / GPU-hours (share), whether both frontier targets are met and whether it is on or
beyond every baseline point (`adapt_frontier.verdict`, against the baseline rows of the base run), beside the
default's; per point the windows met, those on or beyond every baseline point, and the sums over the windows it
was run on.  Reads files only.

    python -m experiments.dev.rent19.judge --base s18b --runs s19dev [s19j ...] [--offsets 4,12,14,20,28]
"""

from __future__ import annotations

import argparse

from experiments.adapt_frontier import verdict, window_table
from experiments.common import read_rows

DEFAULT = "adaptive"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="s18b")
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--offsets", default="")
    args = ap.parse_args(argv)
    base = read_rows(f"{args.base}/adapt_frontier")
    extra = [r for run in args.runs for r in read_rows(f"{run}/adapt_frontier")
             if r["policy"] != DEFAULT and r["policy"].startswith("adaptive")]
    table = window_table([*base, *extra])
    cands = list(dict.fromkeys(r["policy"] for r in extra))
    keep = {int(o) for o in args.offsets.split(",") if o} or set(table)
    met = {p: 0 for p in [DEFAULT, *cands]}
    beyond = dict(met)
    total = {p: [0.0, 0.0, 0] for p in met}  # reconfigurations, GPU-hours, windows run
    print("| functions | " + " | ".join([DEFAULT, *cands]) + " |")
    print("|---" * (1 + len(cands) + 1) + "|")
    for off in sorted(keep & set(table)):
        cells = []
        for p in [DEFAULT, *cands]:
            if p not in table[off]:
                cells.append("not run")
                continue
            v = table[off][p]
            ok, on, _ = verdict(table[off], p)
            met[p] += ok
            beyond[p] += on
            total[p] = [total[p][0] + v["reconf"], total[p][1] + v["hours"], total[p][2] + 1]
            text = f"{v['reconf']:.0f} / {v['hours']:.2f} ({v['share']:.0%})"
            cells.append((f"**{text}**" if ok else text) + ("" if on else " dominated"))
        print(f"| {off}..{off + 3} | " + " | ".join(cells) + " |")
    print("| met | " + " | ".join(str(met[p]) for p in [DEFAULT, *cands]) + " |")
    print("| on or beyond every baseline point | " + " | ".join(str(beyond[p]) for p in [DEFAULT, *cands]) + " |")
    print("| windows run: reconf. / GPU-h | " + " | ".join(f"{t[2]}: {t[0]:.0f} / {t[1]:.2f}" for t in total.values())
          + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
