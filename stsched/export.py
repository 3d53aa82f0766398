"""What an operator applies to deploy a plan: MIG slices, MPS percentages or the green-context layout.

* `mig`: a shell script of `nvidia-smi mig` commands that create every GPU's slices at their start slots
  (`-cgi PROFILE:START`, a GPU instance profile per slice size, NVIDIA's A100/H100 profile IDs, memory in the name
  from the mechanism's slice memory), with the tenants, batches and MPS processes of each slice as comments.
* `mps`: a shell script that starts one MPS control daemon per GPU and one serving process per partition with its
  `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`, its tenants and batches in `STSCHED_TENANTS` (service:batch:rate, round robin,
  one batch each per duty cycle) and its cycle in `STSCHED_DUTY_MS`; the serving command is the operator's
  (`$STSCHED_SERVE`).
* `sm`: the JSON layout the executor builds with CUDA green contexts (`stsched execute --backend sm`): per GPU the
  SM counts split off the device in order, each with its tenants, batches, rates and duty cycle.

The format must match the instance's mechanism; a plan the checker rejects is not exported.
"""

from __future__ import annotations

import json
import shlex

from stsched.checker import Report
from stsched.errors import InputError
from stsched.plan import Partition, Plan
from stsched.problem import Instance, MechanismKind
from stsched.timing import cycle_ms, gpu_timings

FORMATS = {"mig": MechanismKind.MIG, "mps": MechanismKind.MPS, "sm": MechanismKind.SM}

# NVIDIA GPU instance profile IDs of A100 and H100 (40 and 80 GB): the same ID per compute-slice count
# (MIG user guide, "Supported MIG profiles"; `nvidia-smi mig -lgip`).
MIG_PROFILE_IDS = {1: 19, 2: 14, 3: 9, 4: 5, 7: 0}


def check_format(instance: Instance, fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {sorted(FORMATS)}")
    kind = instance.mechanism.kind
    if FORMATS[fmt] is not kind:
        other = next(k for k, v in FORMATS.items() if v is kind)
        raise InputError(f"--format {fmt}: instance {instance.name!r} partitions its GPUs by {kind.value}, "
                         f"not {FORMATS[fmt].value} (use --format {other})")


def mig_profile(instance: Instance, size: float) -> tuple[int, str]:
    """(GPU instance profile ID, short name such as 3g.40gb) of a slice of `size` compute slices."""
    g = int(round(size))
    if g not in MIG_PROFILE_IDS or abs(size - g) > 1e-9:
        raise InputError(f"MIG slice of {size:g} compute slices has no GPU instance profile (1, 2, 3, 4, 7)")
    mem = instance.mechanism.slice_memory(size)
    name = f"{g}g" if mem is None else f"{g}g.{int(round(mem / 1024))}gb"
    return MIG_PROFILE_IDS[g], name


def _tenants_text(p: Partition) -> str:
    return ", ".join(f"{t.service} batch {t.batch} at {t.rate:.2f} req/s" for t in p.tenants)


def _duties(instance: Instance, plan: Plan) -> list[list[float]]:
    out = []
    for g in plan.gpus:
        out.append([p.duty_ms if p.duty_ms is not None else cycle_ms(times)
                    for p, times in zip(g.partitions, gpu_timings(instance, g))])
    return out


def _header(instance: Instance, plan: Plan, what: str) -> list[str]:
    return [f"# stsched export ({what}): instance {instance.name!r}, plan by {plan.solver or '-'}, "
            f"{plan.gpus_used} GPUs of {instance.device.name}, scale {plan.scale:g}",
            "# Each partition's tenants run round robin, one batch each per duty cycle (docs/RULES.md)."]


def _physical_gpus(plan: Plan):
    """(physical index, plan GPU index, [(partition index, partition) with tenants]) of every GPU in use: unused
    GPUs of a plan take no physical GPU."""
    physical = 0
    for gi, g in enumerate(plan.gpus):
        parts = [(qi, p) for qi, p in enumerate(g.partitions) if p.tenants]
        if parts:
            yield physical, gi, parts
            physical += 1


def export_mig(instance: Instance, plan: Plan, report: Report) -> str:
    lines = ["#!/bin/sh", *_header(instance, plan, "MIG slices at their start slots"), "set -e"]
    duties = _duties(instance, plan)
    for physical, gi, parts in _physical_gpus(plan):
        starts = report.mig_starts[gi]
        tuples = []
        lines += ["", f"# GPU {physical} (plan GPU {gi}): slices {[p.size for _, p in parts]}"]
        for qi, p in sorted(parts, key=lambda x: -x[1].size):
            pid, name = mig_profile(instance, p.size)
            tuples.append(f"{pid}:{starts[qi]}")
            lines.append(f"#   {name} (profile {pid}) at slot {starts[qi]}: {p.procs} MPS process"
                         f"{'es' if p.procs > 1 else ''}, cycle {duties[gi][qi]:.3f} ms; {_tenants_text(p)}")
        lines += [f"nvidia-smi -i {physical} -mig 1",
                  f"nvidia-smi mig -i {physical} -dci 2>/dev/null || true",
                  f"nvidia-smi mig -i {physical} -dgi 2>/dev/null || true",
                  f"nvidia-smi mig -i {physical} -cgi {','.join(tuples)} -C"]
    lines += ["", "nvidia-smi mig -lgi  # check: every slice's Placement Start matches the slot above"]
    return "\n".join(lines) + "\n"


def export_mps(instance: Instance, plan: Plan) -> str:
    lines = ["#!/bin/sh", *_header(instance, plan, "MPS active-thread percentage per process"), "set -e",
             ': "${STSCHED_SERVE:?set STSCHED_SERVE to the command that serves STSCHED_TENANTS}"']
    duties = _duties(instance, plan)
    for physical, gi, parts in _physical_gpus(plan):
        pipe = f"/tmp/stsched-mps-{physical}"
        lines += ["", f"# GPU {physical} (plan GPU {gi}): partitions {[p.size for _, p in parts]} % of its SMs",
                  f"export CUDA_VISIBLE_DEVICES={physical} CUDA_MPS_PIPE_DIRECTORY={pipe} "
                  f"CUDA_MPS_LOG_DIRECTORY={pipe}-log",
                  f"mkdir -p {pipe} {pipe}-log && nvidia-cuda-mps-control -d"]
        for qi, p in parts:
            tenants = ",".join(f"{t.service}:{t.batch}:{t.rate:.4f}" for t in p.tenants)
            for k in range(p.procs):
                lines.append(f"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={p.size:g} STSCHED_TENANTS={shlex.quote(tenants)} "
                             f"STSCHED_DUTY_MS={duties[gi][qi]:.3f} $STSCHED_SERVE &  "
                             f"# partition {qi}{f' process {k + 1}/{p.procs}' if p.procs > 1 else ''}: "
                             f"{_tenants_text(p)}")
    lines += ["", "wait"]
    return "\n".join(lines) + "\n"


def export_sm(instance: Instance, plan: Plan) -> str:
    duties = _duties(instance, plan)
    gpus = []
    for physical, gi, parts in _physical_gpus(plan):
        gpus.append({
            "gpu": physical, "plan_gpu": gi, "sms": [int(round(p.size)) for _, p in parts],
            "partitions": [{
                "partition": qi, "sms": int(round(p.size)), "duty_ms": round(duties[gi][qi], 4),
                "tenants": [{"service": t.service, "model": instance.service(t.service).model, "batch": t.batch,
                             "rate": t.rate} for t in p.tenants]} for qi, p in parts]})
    doc = {"format": "stsched-green-contexts", "instance": instance.name, "device": instance.device.name,
           "device_sms": instance.device.sms, "granularity_note": "SM counts are split off the device in this order "
           "(profiler.partitions.sm, driver implementation); the driver reads back the count it gave",
           "run": "stsched execute INSTANCE PLAN --backend sm", "gpus": gpus}
    return json.dumps(doc, indent=1) + "\n"


def export_plan(instance: Instance, plan: Plan, report: Report, fmt: str) -> str:
    """The text to write for `fmt` (mig | mps | sm); `report`: the checker's (valid) report of the plan."""
    check_format(instance, fmt)
    if fmt == "mig":
        return export_mig(instance, plan, report)
    if fmt == "mps":
        return export_mps(instance, plan)
    return export_sm(instance, plan)
