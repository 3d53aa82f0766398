#!/bin/bash
# Solver cg's certified gap at 256 services (issue 17), 120 s of wall per solve, without and with `lns_pool=1`
# (docs/RESULTS.md, "the search over the whole pool of columns"): one TSV line per device, seed and arm.  For a quiet
# machine (the wall clock is the limit); 12 solves of about 2 min each with the default seeds.
#   bash scripts/judge_cg256.sh [SEEDS...] > cg256.tsv      (default seeds 7 8 9; instances and plans in a temp dir;
#   SERVICES, GPUS, LIMIT override 256, 128, 120 s for a smoke test; STSCHED the command run, default `stsched`
#   on PATH, e.g. STSCHED=".venv/bin/stsched"; a failed solve prints NA in its columns, its log in the temp dir)
set -u
seeds=${*:-7 8 9}
out=$(mktemp -d)
st=${STSCHED:-stsched}
tmp=$(mktemp)
printf 'device\tseed\tlns_pool\tgpus\tbound\tgap\tvalid\twall_s\tcpu_s\tpeak_mb\tload_before\n'
for d in a100-mps a100-mig; do
  case $d in a100-mps) extra="--param cg_share=0.7";; *) extra="--param cg_share=0.5 --param master_share=0.8";; esac
  for s in $seeds; do
    i="$out/$d-$s.json"
    "$st" scenario random --services "${SERVICES:-256}" --gpus "${GPUS:-128}" --seed "$s" --arrivals deterministic \
      --dataset "$d" --out "$i" > /dev/null
    for pool in 0 1; do
      l0=$(cut -d' ' -f1 /proc/loadavg)
      # shellcheck disable=SC2086
      /usr/bin/time -f "%e %U %S %M" -o "$tmp" "$st" solve "$i" --solver cg --objective min-gpus \
        --time-limit "${LIMIT:-120}" $extra --param lns_free=20 --param cuts=3 --param cut_early=1 --param workers=2 --param lns_pool=$pool \
        --json > "$out/$d-$s-$pool.json" 2> "$out/$d-$s-$pool.err"
      read -r e u sy m < <(tail -1 "$tmp")
      # a failed solve (no JSON, or no plan: objective or gap null) prints NA in its columns
      python3 -c "
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    j = {}
j = j if isinstance(j, dict) else {}
def v(k):
    return 'NA' if j.get(k) is None else j[k]
gap = 'NA' if not isinstance(j.get('gap'), (int, float)) else f'{100 * j[\"gap\"]:.1f} %'
print('\t'.join(map(str, [*sys.argv[2:5], v('objective'), v('bound'), gap, v('valid')])), end='\t')" \
        "$out/$d-$s-$pool.json" "$d" "$s" "$pool"
      printf '%s\t%s\t%s\t%s\n' "$e" "$(awk "BEGIN{print $u+$sy}")" "$((m / 1024))" "$l0"
    done
  done
done
rm -f "$tmp"
echo "# plans and logs: $out" >&2
