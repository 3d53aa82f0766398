#!/usr/bin/env bash
# The one GPU check of the profiler and the executor (docs/PROFILER.md, "Running on a GPU").
#
#   scripts/gpu_check.sh [DEST]        DEST: where the results go (default $OUT, else ./gpu-check)
#
# 1. facts: nvidia-smi, torch/CUDA versions, green-context support, which backends can run (MPS only if a daemon
#    is already running: this script never starts or stops daemons and changes no GPU setting);
# 2. a solo sweep of resnet50 / mobilenetv2 / bert-base x batch 1, 8 on green-context partitions of 16, 32, 64 and
#    132 SMs (the whole-GPU backend at 100 % if green contexts are unavailable), and one co-run layout 64 + 64;
# 3. the same co-run pair on the whole GPU as two streams (no partitioning), for comparison;
# 4. an SM probe: a Triton kernel reads %smid on each green-context partition (are the SM sets the sizes the driver
#    reported, and disjoint?), and torch's own GreenContext read back;
# 5. the executor on a tiny plan built from the profile just measured (2 partitions, 3 services), beside the
#    simulator on the same arrivals;
# 6. the reconfiguration cost: layouts 64+64, 32+96, 16+112, 132 SMs with the three models as tenants, opened and
#    loaded 4 times each, and every tenant's process restarted in parallel twice (the MPS analogue);
# 7. with the time left of STSCHED_GPU_CHECK_BUDGET seconds (default 420): a wider solo grid for data/profiles
#    (5 models x batch 1..32 x 16..132 SMs) into the same resumable folder, then co-runs of 4 models on 64+64 and
#    32+96 SMs.  Each of these two steps stops at its deadline; every point measured so far is kept (atomic writes).
# Every step is timed and independent: a failing step is reported and the next one runs; if the green-context
# sweep measures nothing, the later steps use the whole-GPU backend.  Outputs: sm_solo.csv,
# sm_corun.csv, sm_meta.json, gpu_solo.csv, gpu_corun.csv, exec.json, reconfig.json, report.json (with the sweep's
# samples.json under "samples"), work.tar.gz
# (every file made, samples and logs; only when fewer than 7 other files were written).  STSCHED_GPU_CHECK_STEPS="facts reconfig" runs only the steps named
# (facts sweep resume gpu probe plan execute execute-text reconfig data-solo data-corun).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-${OUT:-$REPO/gpu-check}}
WORK=${STSCHED_GPU_WORK:-/tmp/stsched-gpu-check}
PY=${PYTHON:-python3}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
cd "$REPO" || exit 2
rm -rf "$WORK"
mkdir -p "$DEST" "$WORK"
T0=$(date +%s)
BUDGET=${STSCHED_GPU_CHECK_BUDGET:-420}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
FAILED=()
step() { echo; echo "== [$(( $(date +%s) - T0 )) s] $*"; }
STEPS=${STSCHED_GPU_CHECK_STEPS:-}  # e.g. "facts reconfig": run only these steps (default: every step)
wants() { [ -z "$STEPS" ] || [[ " $STEPS " == *" $1 "* ]]; }
run() { # run NAME CMD...: run a step (if wanted), remember a failure
  local name=$1; shift
  wants "$name" || { echo "(step $name not selected)"; return 0; }
  "$@" || { echo "!! step $name failed (exit $?)"; FAILED+=("$name"); }
}
CLI="$PY -m stsched.commands.profile"

step "facts"
nvidia-smi || echo "nvidia-smi failed"
nvidia-smi --query-gpu=name,driver_version,mig.mode.current,compute_mode,clocks.max.sm,power.limit --format=csv \
  || true
run facts $PY - "$WORK/facts.json" <<'PY'
import json, sys
import torch
from profiler.partitions import get_backend
from profiler.partitions.cudriver import probe
facts = {"torch": str(torch.__version__), "cuda": str(torch.version.cuda), "python": sys.version.split()[0],
         "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
         "sms": torch.cuda.get_device_properties(0).multi_processor_count if torch.cuda.is_available() else None,
         "driver": probe(),
         "backends": {n: vars(get_backend(n).availability()) for n in ("cpu", "mps", "sm", "gpu")}}
try:
    from torch.cuda import green_contexts
    facts["torch_green_contexts"] = bool(getattr(green_contexts, "SUPPORTED", False))
    facts["torch_green_context_has_stream"] = hasattr(green_contexts.GreenContext, "Stream")
except Exception as e:  # noqa: BLE001
    facts["torch_green_contexts"] = f"{type(e).__name__}: {e}"
for mod in ("cupy", "triton"):
    try:
        facts[mod] = __import__(mod).__version__
    except Exception as e:  # noqa: BLE001
        facts[mod] = f"{type(e).__name__}: {e}"
json.dump(facts, open(sys.argv[1], "w"), indent=1)
print(json.dumps(facts, indent=1))
PY
$CLI backends
MODELS=${STSCHED_GPU_CHECK_MODELS:-"resnet50 mobilenetv2 bert-base"}
read -r M1 M2 M3 <<< "$MODELS"
if [ -n "${STSCHED_GPU_CHECK_BACKEND:-}" ]; then  # a dry run of this script elsewhere, e.g. cpu with tiny models
  BACK=$STSCHED_GPU_CHECK_BACKEND; SIZES=${STSCHED_GPU_CHECK_SIZES:-"1 2"}; PAIR=${STSCHED_GPU_CHECK_PAIR:-"1,1"}
elif $CLI backends | grep -q "^sm   available"; then
  BACK=sm; SIZES="16 32 64 132"; PAIR="64,64"
else
  BACK=gpu; SIZES="100"; PAIR="100,100"
  echo "green contexts unavailable: profiling the whole GPU instead"
fi

step "solo sweep + co-run on backend $BACK (sizes $SIZES, co-run $PAIR)"
run sweep timeout 300 $CLI -v profile --backend "$BACK" --models $MODELS --batches 1 8 \
  --sizes $SIZES --repeats 20 --warmup 5 --corun "$PAIR" --corun-models "$M1" "$M2" --corun-batches 8 \
  --corun-window 1.0 --out "$WORK/$BACK"
step "resume: the same command again must measure nothing"
run resume timeout 120 sh -c "$CLI profile --backend $BACK --models $MODELS --batches 1 8 --sizes $SIZES \
  --repeats 20 --warmup 5 --corun $PAIR --corun-models $M1 $M2 --corun-batches 8 --corun-window 1.0 \
  --out '$WORK/$BACK' > '$WORK/resume.txt'; cat '$WORK/resume.txt'; grep -q ' 0 solo and 0 co-run' '$WORK/resume.txt'"

if [ "$BACK" = sm ] && wants sweep && [ ! -s "$WORK/sm/solo.csv" ]; then
  echo "the green-context sweep measured nothing: the executor and the data sweep use the whole GPU"
  PROBE_SM=1; BACK=gpu; SIZES="100"; PAIR="100,100"
  run gpu timeout 180 $CLI profile --backend gpu --models $MODELS --batches 1 8 --sizes 100 \
    --repeats 20 --warmup 5 --corun 100,100 --corun-models "$M1" "$M2" --corun-batches 8 --corun-window 1.0 \
    --out "$WORK/gpu"
elif [ "$BACK" = sm ]; then
  PROBE_SM=1
  step "whole GPU, two streams, same pair"
  run gpu timeout 180 $CLI profile --backend gpu --models "$M1" "$M2" --batches 8 --sizes 100 \
    --repeats 20 --warmup 5 --corun 100,100 --corun-batches 8 --corun-window 1.0 --out "$WORK/gpu"

fi
if [ -n "${PROBE_SM:-}" ]; then
  step "SM probe (%smid, eager and graph replay) on green contexts"
  run probe timeout 180 $PY - "$WORK/probe.json" <<'PY'
import json, sys, time
from profiler.partitions import get_backend
out = {}

def look(w, graph):
    try:
        return w.call("observed_sms", timeout=120, graph=graph)
    except Exception as e:  # noqa: BLE001
        out.setdefault("errors", []).append(f"graph={graph}: " + (str(e).splitlines() or [type(e).__name__])[-1])
        return None

for layout in ([64, 64], [16, 112], [132]):
    t = time.perf_counter()
    with get_backend("sm").open(layout) as pset:
        rec = {"open_ms": round((time.perf_counter() - t) * 1000, 1), "partitions": []}
        seen = []
        for w in pset.workers:
            eager, graphed = look(w, False), look(w, True)
            seen.append(eager)
            rec["partitions"].append({"requested": w.info.get("sm_requested"), "read_back": w.info.get("sm_count"),
                                      "observed": None if eager is None else len(eager),
                                      "observed_graph": None if graphed is None else len(graphed),
                                      "graph_subset": None if None in (eager, graphed) else set(graphed) <= set(eager)})
        if len(seen) == 2 and None not in seen:
            rec["overlap"] = len(set(seen[0]) & set(seen[1]))
        out["+".join(map(str, layout))] = rec
try:
    with get_backend("sm", impl="torch").open([40]) as pset:
        w = pset.workers[0]
        obs = look(w, False)
        out["torch_impl"] = {"requested": 40, "read_back": w.info.get("sm_count"),
                             "observed": None if obs is None else len(obs)}
except Exception as e:  # noqa: BLE001
    out["torch_impl"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}"}
json.dump(out, open(sys.argv[1], "w"), indent=1)
print(json.dumps(out, indent=1))
PY
fi

step "executor: a tiny plan from the profile just measured"
run plan $PY - "$WORK" "$BACK" "${PAIR%%,*}" $MODELS <<'PY'
import json, sys
from pathlib import Path
from stsched.checker import check
from stsched.data import read_solo_csv
from stsched.devices import sm_mechanism, mps_mechanism
from stsched.io import save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Device, Instance, LatencyTable, ProfileEntry, Service

work, back, half, (m1, m2, m3) = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4:7]
solo = read_solo_csv(work / back / "solo.csv")
meta = json.loads((work / back / "meta.json").read_text())
tables = tuple(LatencyTable(m, tuple(ProfileEntry(int(r.batch), float(r.partition), 1, float(r.latency_ms))
                                     for r in g.itertuples())) for m, g in solo.groupby("model"))
lat = {(r.model, int(r.batch), float(r.partition)): float(r.latency_ms) for r in solo.itertuples()}
device = Device(meta["device"], float(meta["memory_mb"]) or 65536.0, int(meta["sm_count"]))
if back == "gpu":  # one partition: the whole GPU, three tenants
    mech, sizes, layout = mps_mechanism((100.0,)), [100.0], [[(m1, 8), (m2, 8), (m3, 1)]]
else:  # two partitions of the co-run size (SMs or threads, as read back), one and two tenants
    mech = sm_mechanism(device, granularity=8 if back == "sm" else 1)
    sizes = [float(meta["size_readback"][f"{half:g}"])] * 2
    layout = [[(m1, 8)], [(m2, 8), (m3, 1)]]
services, parts = [], []
for size, tenants in zip(sizes, layout):
    duty = sum(lat[(m, b, size)] for m, b in tenants)
    ts = []
    for m, b in tenants:
        rate = round(0.5 * 1000.0 * b / duty, 1)  # half the partition's cycle capacity
        slo = round(4 * (duty + lat[(m, b, size)]), 1)
        services.append(Service(m, m, rate, slo))
        ts.append(Tenant(m, b, rate))
    parts.append(Partition(size, tuple(ts)))
inst = Instance(f"gpu-check-{back}", tuple(services), device, mech, 1, (1, 8), tables)
plan = Plan((GpuLayout(tuple(parts)),), solver="gpu_check")
report = check(inst, plan)
print("checker:", "valid" if report.valid else report.violations)
save_instance(inst, work / "instance.json")
save_plan(plan, work / "plan.json")
PY
run execute timeout 120 sh -c "$CLI execute '$WORK/instance.json' '$WORK/plan.json' --backend $BACK --duration 10 \
  --seed 1 --compare-sim --json > '$WORK/exec.json'"
run execute-text timeout 60 $CLI execute "$WORK/instance.json" "$WORK/plan.json" --backend "$BACK" --duration 3 \
  --seed 2 --compare-sim

case "$BACK" in sm) RLAY="64,64 32,96 16,112 132";; gpu) RLAY="100,100";; *) RLAY="1,1 2";; esac
RLAY=${STSCHED_GPU_CHECK_RECONFIG_LAYOUTS:-$RLAY}
step "reconfiguration cost on $BACK: layouts $RLAY, tenants $M1 $M2 $M3"
run reconfig timeout 240 $CLI -v reconfig-cost --backend "$BACK" --layouts $RLAY --models "$M1" "$M2" "$M3" \
  --batch 8 --repeats 4 --process-restart 2 --out "$WORK/reconfig.json"

if [ -z "${STSCHED_GPU_CHECK_BACKEND:-}" ] || [ -n "${STSCHED_GPU_CHECK_DATA_SIZES:-}" ]; then
  if [ "$BACK" = sm ]; then DSIZES="16 32 48 64 96 132"; DPAIRS="64,64 32,96 16,112"; else DSIZES="100"; DPAIRS="100,100"; fi
  DSIZES=${STSCHED_GPU_CHECK_DATA_SIZES:-$DSIZES}; DPAIRS=${STSCHED_GPU_CHECK_DATA_PAIRS:-$DPAIRS}
  DMODELS=${STSCHED_GPU_CHECK_DATA_MODELS:-"resnet50 mobilenetv2 bert-base vgg16 resnet18"}
  read -r D1 D2 D3 D4 _ <<< "$DMODELS"
  T=$(( $(left) - 150 ))
  step "data: solo grid on $BACK (sizes $DSIZES), ${T} s"
  [ "$T" -gt 20 ] && run data-solo timeout -s INT -k 20 "$T" $CLI profile --backend "$BACK" --models $DMODELS \
    --batches 1 2 4 8 16 32 --sizes $DSIZES --repeats 20 --warmup 5 --out "$WORK/$BACK"
  T=$(( $(left) - 40 ))
  step "data: co-runs on $BACK ($DPAIRS), ${T} s"
  [ "$T" -gt 20 ] && run data-corun timeout -s INT -k 20 "$T" $CLI profile --backend "$BACK" \
    --models $D1 $D2 $D3 $D4 --batches 8 --sizes ${DSIZES%% *} --repeats 20 --warmup 5 \
    --corun $DPAIRS --corun-batches 8 --corun-window 1.0 --out "$WORK/$BACK"
fi

step "collect into $DEST"
cp "$WORK/$BACK/solo.csv" "$DEST/${BACK}_solo.csv" 2>/dev/null
cp "$WORK/$BACK/corun.csv" "$DEST/${BACK}_corun.csv" 2>/dev/null
cp "$WORK/$BACK/meta.json" "$DEST/${BACK}_meta.json" 2>/dev/null
if [ "$BACK" = sm ]; then
  cp "$WORK/gpu/solo.csv" "$DEST/gpu_solo.csv" 2>/dev/null
  cp "$WORK/gpu/corun.csv" "$DEST/gpu_corun.csv" 2>/dev/null
fi
cp "$WORK/exec.json" "$DEST/exec.json" 2>/dev/null
cp "$WORK/reconfig.json" "$DEST/reconfig.json" 2>/dev/null
$PY - "$WORK" "$DEST/report.json" "${FAILED[*]:-}" "$(( $(date +%s) - T0 ))" "$WORK/$BACK/samples.json" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
rep = {"failed_steps": sys.argv[3].split(), "wall_s": int(sys.argv[4])}
samples = Path(sys.argv[5])  # every timed repeat of the sweep: the simulator's measured noise (--noise-cv report.json)
rep["samples"] = json.loads(samples.read_text()) if samples.exists() else None
for name in ("facts", "probe", "reconfig"):
    p = work / f"{name}.json"
    rep[name] = json.loads(p.read_text()) if p.exists() else None
for name in ("instance", "plan"):
    p = work / f"{name}.json"
    rep[name] = json.loads(p.read_text()) if p.exists() else None
json.dump(rep, open(sys.argv[2], "w"), indent=1)
PY
if [ "$(ls "$DEST" | wc -l)" -lt 7 ]; then  # the device tool returns at most 8 files: keep room for a log
  tar -C "$WORK" -czf "$DEST/work.tar.gz" . 2>/dev/null || echo "tar failed"
fi
for f in "$DEST"/*.csv; do echo "--- $f ($(wc -l < "$f") lines)"; head -n 40 "$f"; done
step "done; failed steps: ${FAILED[*]:-none}"
[ ${#FAILED[@]} -eq 0 ]
