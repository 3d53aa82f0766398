"""The hand merges of the frontier study's rows in docs/RESULTS.md (issue 18 session 18, parts 1 and 2), and the
table of the baseline points nearest to the adaptive default (part 1), from the rows of the runs they combine.

    python -m experiments.dev.frontier18.merge_rows s18b [--results results] [--out DIR]
    python -m experiments.dev.frontier18.merge_rows s18e [--results results] [--out DIR]
    python -m experiments.dev.frontier18.merge_rows nearest [--results results]

`s18b`: results/s16t's rows (static peak, full re-partitioning and the adaptive default on 20 windows; the nine other
baseline points on the development windows 4, 12, 14, 20, 28, from results/s16s) then results/s18a's (the nine
points on the 15 other windows), under s18a's columns (s16t's rows lack the attribution columns: blank).
`s18e`: results/s16q's static-peak rows in the order of s18c's --offsets, then results/s18c's rows and those of
results/s18c2 whose (window, policy) s18c lacks, the observed start's points relabelled `periodic[period=1]` and
`adaptive` (so that the study's summary reads them as full re-partitioning and the adaptive point), under s18c's
columns.  Each writes DIR/adapt_frontier/rows.csv (default: the run's own folder under --results, the file the
summary was drawn from; `--out` elsewhere to compare, e.g. `cmp`), in the study's CSV form.
`nearest`: per window of results/s18b, the baseline point (static peak, full re-partitioning and the nine others)
with the fewest reconfigurations at no more GPU-hours than the adaptive default's, and the one with the fewest
GPU-hours at no more reconfigurations (ties: fewer reconfigurations or GPU-hours, then the nine other points before
static peak and full re-partitioning, to show a practitioner point that ties with static peak, then the rows'
order), as the markdown table of RESULTS; bold: both targets met (`adapt_frontier.verdict`).  Reads files only (no solver run).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from experiments.adapt_frontier import BASELINES, FULL, STATIC, family, verdict, window_table
from stsched.io import write_atomic

OBSERVED = {"periodic[period=1,cold_start_s=none,cold_count_s=5]": FULL,
            "adaptive[cold_start_s=none,cold_count_s=5]": "adaptive"}
S18C_OFFSETS = (28, 20, 34, 18, 26, 14, 30, 36, 6, 8, 4, 12, 10, 0, 1, 2, 16, 22, 24, 32)
DEV = (4, 12, 14, 20, 28)  # the windows where s16t's rows hold the nine points (marked "(dev)" in the table)


def read(results: Path, run: str) -> tuple[list[str], list[dict[str, str]]]:
    with open(results / run / "adapt_frontier" / "rows.csv", newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()  # as experiments.common writes rows.csv
    w = csv.DictWriter(buf, fieldnames=columns, restval="", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())


def s18b(results: Path) -> tuple[list[str], list[dict[str, str]]]:
    _, old = read(results, "s16t")
    columns, new = read(results, "s18a")
    return columns, old + new


def s18e(results: Path) -> tuple[list[str], list[dict[str, str]]]:
    _, q = read(results, "s16q")
    columns, c = read(results, "s18c")
    _, c2 = read(results, "s18c2")
    static = {int(r["offset"]): r for r in q if r["policy"] == STATIC}
    seen = {(r["offset"], r["policy"]) for r in c}
    rows = c + [r for r in c2 if (r["offset"], r["policy"]) not in seen]
    return columns, [static[o] for o in S18C_OFFSETS] + [{**r, "policy": OBSERVED[r["policy"]]} for r in rows]


def name(spec: str) -> str:
    if spec == STATIC:
        return "static"
    if spec == FULL:
        return "full"
    knobs = dict(kv.split("=") for kv in spec.partition("[")[2].rstrip("]").split(",") if kv)
    if family(spec) == "periodic":
        return f"periodic k={knobs['period']}"
    return f"practitioner ({knobs['save_gpus']}, {knobs['save_for']})"


def nearest(results: Path) -> str:
    _, rows = read(results, "s18b")
    lines = ["| functions | adaptive: reconf. / GPU-h (share) | met | fewest changes of a baseline point at <= "
             "adaptive's GPU-h | fewest GPU-h of a baseline point at <= adaptive's changes |",
             "|---|---|---|---|---|"]
    for off, pols in window_table(rows).items():
        me = pols["adaptive"]
        ok = verdict(pols, "adaptive")[0]
        base = [(k, v) for k, v in pols.items() if k != "_window" and family(k) in BASELINES]
        cheap = sorted(((k, v) for k, v in base if v["hours"] <= me["hours"] + 1e-9),
                       key=lambda kv: (kv[1]["reconf"], kv[1]["hours"], kv[0] in (STATIC, FULL)))
        calm = sorted(((k, v) for k, v in base if v["reconf"] <= me["reconf"] + 1e-9),
                      key=lambda kv: (kv[1]["hours"], kv[1]["reconf"], kv[0] in (STATIC, FULL)))

        def cell(kv):
            return "none" if kv is None else f"{name(kv[0])}: {kv[1]['reconf']:.0f} / {kv[1]['hours']:.2f}"

        mine = f"{me['reconf']:.0f} / {me['hours']:.2f} ({me['share']:.0%})"
        lines.append(f"| {off}..{off + 3}{' (dev)' if off in DEV else ''} | {f'**{mine}**' if ok else mine} | "
                     f"{'yes' if ok else 'no'} | {cell(cheap[0] if cheap else None)} | "
                     f"{cell(calm[0] if calm else None)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("s18b", "s18e", "nearest"))
    ap.add_argument("--results", type=Path, default=Path("results"), help="the results root (default results)")
    ap.add_argument("--out", type=Path, default=None, help="write DIR/adapt_frontier/rows.csv (s18b, s18e)")
    args = ap.parse_args(argv)
    if args.what == "nearest":
        if args.out is not None:
            ap.error("--out: nearest prints its table")
        print(nearest(args.results), end="")
        return 0
    columns, rows = (s18b if args.what == "s18b" else s18e)(args.results)
    out = args.out if args.out is not None else args.results / args.what
    write(out / "adapt_frontier" / "rows.csv", columns, rows)
    print(f"{len(rows)} rows -> {out / 'adapt_frontier' / 'rows.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
