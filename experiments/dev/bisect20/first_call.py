"""Issue 18, session 20: where two commits' call traces of one window part (`trace_calls` output), and what every
valid plan of either carried.  Reads files only.

    python -m experiments.dev.bisect20.first_call OLD.txt NEW.txt [OLD2.txt NEW2.txt ...]

Per pair: the first call whose answer differs (both lines, without the layouts), whether it was asked the same
question (the plan handed in has the same fingerprint), and the first change of layouts that differs; over all the
files: the valid plans seen, the least share of a rate any of them carried at exact capacities, and the exact
adapt calls by status.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

CALL = re.compile(r"^call\s+(?P<t>[\d.]+)\s+(?P<kind>\S+)\s+(?P<solver>\S+)\s+(?P<objective>\S+)\s+G=\s*(?P<g>\d+)\s+"
                  r"(?P<status>\S+)\s.*?least=(?P<least>\S+) fp=(?P<fp>\S+) in=(?P<input>\S+)")


def _short(line: str) -> str:
    return line.split(" [")[0].split(" msg=")[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args(argv)
    if len(args.files) % 2:
        ap.error("files come in pairs: OLD NEW")
    least, plans, status = float("inf"), 0, Counter()
    for old_path, new_path in zip(args.files[::2], args.files[1::2]):
        old, new = old_path.read_text().splitlines(), new_path.read_text().splitlines()
        calls_old = [line for line in old if line.startswith("call")]
        calls_new = [line for line in new if line.startswith("call")]
        print(f"== {old_path.name} vs {new_path.name}: {old[-1]} -> {new[-1]}")
        for a, b in zip(calls_old, calls_new):
            if _short(a) != _short(b):
                ma, mb = CALL.match(a), CALL.match(b)
                asked = ma is not None and mb is not None and ma["input"] == mb["input"] and ma["g"] == mb["g"]
                print(f"   first call that differs (same question: {asked}):\n     {_short(a)}\n     {_short(b)}")
                break
        changes_old = [line for line in old if line.startswith("change")]
        changes_new = [line for line in new if line.startswith("change")]
        for a, b in zip(changes_old, changes_new):
            if a != b:
                print(f"   first change that differs:\n     {a}\n     {b}")
                break
        for line in calls_old + calls_new:
            m = CALL.match(line)
            if m is None:
                continue
            if m["least"] != "-":
                plans += 1
                least = min(least, float(m["least"]))
            if m["solver"] == "milp" and m["objective"] == "adapt":
                status[m["status"]] += 1
    print(f"valid plans: {plans}, least share of a rate carried at exact capacities: {least:.9f}; "
          f"exact adapt calls by status: {dict(status)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
