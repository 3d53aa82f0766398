#!/bin/bash
# Every study's --quick, one after another: wall and CPU seconds (the study's process and its children), the load
# average before and after, and the exit status, as a TSV on stdout (docs/SCALE_OUT.md, "--quick, measured").
#   bash scripts/time_quick.sh [OUT_DIR] > quick_times.tsv   (results and logs in OUT_DIR, default a temp dir;
#   STUDIES="a b" times only those)
set -u
out=${1:-$(mktemp -d)}
mkdir -p "$out"
py=${PYTHON:-python}
tmp=$(mktemp)
printf 'study\trc\twall_s\tcpu_s\tload_before\tload_after\n'
for s in ${STUDIES:-$("$py" -c "from experiments.common import studies; print(' '.join(x.name for x in studies()))")}; do
  l0=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%e %U %S" -o "$tmp" "$py" -m stsched.cli experiment "$s" --quick --fresh --out "$out" \
    > "$out/$s.log" 2>&1
  rc=$?
  read -r e u sy < <(tail -1 "$tmp")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$rc" "$e" "$(awk "BEGIN{print $u+$sy}")" "$l0" "$(cut -d' ' -f1 /proc/loadavg)"
done
rm -f "$tmp"
