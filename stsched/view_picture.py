"""The plan as a picture (`stsched show --out plan.png|plan.svg`), drawn from a `stsched.view.PlanView`.

Left, one row per GPU: its partitions to scale on the GPU's capacity (MPS %, SMs, MIG slices at their start slots),
inside each partition its duty cycle to scale (one coloured segment per tenant's batch, grey the idle share).
Right, per service: served / offered rate and worst-case latency / SLO (and a simulation's attainment).

Drawing cost is text: matplotlib's Agg backend lays out and rasterises every glyph in Python and FreeType (about
30 us a glyph, 0.3 ms an artist on this machine), and a 32-GPU plan has some 130 partitions.  So the picture says
each thing once: a partition's header strip carries its size (and, when it is time-shared, its cycle, idle share
and load), and a tenant's segment its service, batch, execution time and load; a partition with one tenant that
fills its cycle does not repeat the cycle and load in its header (they are the tenant's).  Segments too narrow for
a label are told apart by colour (the service panel on the right) and listed by `stsched show --text`.  Boxes and
bars are a few collections (one artist each), the service names one text each (no tick machinery), the figure's
size and margins are computed (no tight layout: it would draw twice).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stsched.errors import InputError
from stsched.problem import MechanismKind
from stsched.view import PartitionView, PlanView

ROW_IN = 0.75  # inches per GPU row
SERVICE_IN = 0.2  # inches per service row on the right
WIDTH_IN = 15.0  # figure width
DPI = 100
EM = 0.62  # a label's widest glyphs (DejaVu Sans digits and lower case) are at most this share of the font size
LABEL_PT = 6  # font size of the labels inside the rows

def render(view: PlanView, path: str | Path) -> None:
    """Draw `view` to `path` (.png or .svg); glyphs unhinted (a third faster, as legible)."""
    import matplotlib

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--out {path}: expected a .png or .svg file")
    with matplotlib.rc_context({"text.hinting": "none"}):
        fig = _figure(view)
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {"pil_kwargs": {"compress_level": 1}} if path.suffix.lower() == ".png" else {}
        fig.savefig(path, dpi=DPI, **extra)


def _colours(names: tuple[str, ...]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {n: cmap(i % 20) for i, n in enumerate(names)}


def fills_cycle(p: PartitionView) -> bool:
    """One tenant whose batch takes the whole duty cycle (drawn as one coloured box with one label)."""
    return len(p.tenants) == 1 and p.idle_share < 0.005


def fits(text: str, width_pt: float, fontsize: float = LABEL_PT) -> bool:
    """Whether `text`'s longest line fits in `width_pt` points (with a 2 pt margin each side)."""
    return max(map(len, text.split("\n"))) * fontsize * EM <= width_pt - 4


def first_fit(candidates: tuple[str, ...], width_pt: float) -> str | None:
    """The first (most detailed) candidate label that fits, or None (told by colour and `--text`)."""
    return next((c for c in candidates if fits(c, width_pt)), None)


def header_text(p: PartitionView, width_pt: float) -> str | None:
    """The header strip of a time-shared partition (or one with idle time) `width_pt` points wide."""
    return first_fit((f"{p.label}  cycle {p.duty_ms:.1f} ms, idle {p.idle_share:.0%}, load {p.load:.0%}",
                      f"{p.label} {p.duty_ms:.1f} ms, load {p.load:.0%}", f"{p.label} {p.duty_ms:.0f}ms", p.label),
                     width_pt)


def sole_key(p: PartitionView) -> tuple[Any, ...] | None:
    """What a partition whose one tenant fills its cycle shows (None for any other partition): neighbours on one
    GPU with the same key are labelled once."""
    if not fills_cycle(p):
        return None
    (t,) = p.tenants
    return (t.service, t.batch, p.label, round(t.exec_ms, 1), round(min(t.load, 9.99), 2))


def runs(parts: tuple[PartitionView, ...]) -> list[list[PartitionView]]:
    """The partitions of one GPU in runs: adjacent partitions with the same `sole_key` form one run (a service
    spread over identical partitions, common in min-gpus plans), every other partition is a run of its own."""
    out: list[list[PartitionView]] = []
    for p in parts:
        prev = out[-1][-1] if out else None
        if (prev is not None and sole_key(p) is not None and sole_key(p) == sole_key(prev)
                and abs(prev.start + prev.size - p.start) < 1e-9):
            out[-1].append(p)
        else:
            out.append([p])
    return out


def sole_text(p: PartitionView, width_pt: float, count: int = 1) -> str | None:
    """The label of a run of `count` identical partitions whose one tenant fills its cycle (`width_pt`: the run's
    width): service and batch, size, batch time, load."""
    (t,) = p.tenants
    times, each = (f" \u00d7{count}", " each") if count > 1 else ("", "")
    return first_fit((f"{t.service} b{t.batch}{times}\n{p.label}{each}: {t.exec_ms:.1f} ms, load "
                      f"{min(t.load, 9.99):.0%}",
                      f"{t.service} b{t.batch}{times}\n{p.label}{each}: {t.exec_ms:.1f} ms",
                      f"{t.service} b{t.batch}{times}\n{p.label}", f"{t.service}{times}\n{p.label}", p.label),
                     width_pt)


def tenant_text(t: Any, width_pt: float) -> str | None:
    """A tenant's label in a segment `width_pt` points wide."""
    return first_fit((f"{t.service} b{t.batch}\n{t.exec_ms:.1f} ms, load {min(t.load, 9.99):.0%}",
                      f"{t.service} b{t.batch}", t.service), width_pt)


def _figure(view: PlanView) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no backend switch, faster import
    from matplotlib.patches import Patch, Rectangle

    n_gpus, n_services = len(view.gpus), len(view.services)
    height = max(2.5, ROW_IN * n_gpus + 1.2, SERVICE_IN * n_services + 1.2)
    fig = Figure(figsize=(WIDTH_IN, height))
    # fixed margins in inches (tight_layout would draw the figure twice)
    fig.subplots_adjust(left=0.06, right=0.99, top=1 - 0.45 / height, bottom=0.55 / height, wspace=0.14)
    ax, sx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3.2, 1]})
    colours = _colours(tuple(s.name for s in view.services))
    cap = view.capacity
    boxes: list[tuple[float, float, float, float]] = []  # x, y, width, height: one collection
    segments: list[tuple[float, float, float, float]] = []
    seg_colours: list[Any] = []
    labels = _Labels(fig, ax.transData)
    x_lim = (-0.08 * cap, cap * 1.002)  # room on the left for the GPU names
    unit_pt = ax.get_position().width * WIDTH_IN * 72 / (x_lim[1] - x_lim[0])  # points per unit of capacity
    for row, parts in enumerate(view.gpus):
        y = n_gpus - 1 - row
        gpu = parts[0].gpu if parts else row
        # one element per GPU row with its id (tests count them)
        fig.add_artist(Rectangle((0, y + 0.06), cap, 0.88, fill=False, edgecolor="0.6", linewidth=0.6,
                                 gid=f"gpu-{gpu}", transform=ax.transData))
        labels.add(-0.01 * cap, y + 0.5, f"GPU {gpu}", ha="right", fontsize=8)
        for run in runs(parts):
            p = run[0]
            x0, w = p.start, p.size
            if fills_cycle(p):  # one tenant, no idle: the segment fills the box, one label for the run
                (t,) = p.tenants
                for q in run:
                    segments.append((q.start, y + 0.1, q.size, 0.8))
                    seg_colours.append(colours.get(t.service, "0.5"))
                span = sum(q.size for q in run)
                labels.add(x0 + span / 2, y + 0.5, sole_text(p, span * unit_pt, len(run)))
                continue
            boxes.append((x0, y + 0.1, w, 0.8))
            x = x0
            for t in p.tenants:  # the duty cycle to scale along the partition's width, then idle
                tw = w * t.exec_ms / p.duty_ms if p.duty_ms > 0 else 0.0
                segments.append((x, y + 0.1, tw, 0.55))
                seg_colours.append(colours.get(t.service, "0.5"))
                labels.add(x + tw / 2, y + 0.375, tenant_text(t, tw * unit_pt))
                x += tw
            labels.add(x0 + w / 2, y + 0.78, header_text(p, w * unit_pt))
    ax.add_collection(_rects(boxes, facecolors="0.92", edgecolors="black", linewidths=0.8, zorder=1))
    ax.add_collection(_rects(segments, facecolors=seg_colours, edgecolors="white", linewidths=0.5, zorder=1.5))
    ax.set_xlim(*x_lim)
    ax.set_ylim(0, max(1, n_gpus))
    ax.set_yticks([])
    unit = {MechanismKind.MPS: "MPS active-thread %", MechanismKind.SM: "SMs (green contexts)",
            MechanismKind.MIG: "MIG compute slice (start slot)"}[view.mechanism]
    ax.set_xlabel(f"{unit}; inside each partition its duty cycle to scale (coloured: a tenant's batch, grey: idle; "
                  f"unlabelled segments: see the colours on the right, or --text)", fontsize=9)
    title = (f"{view.instance}: {n_gpus} GPU{'s' if n_gpus != 1 else ''}, solver {view.solver or '-'}, "
             + (f"rates x {view.scale:.4g}, " if view.scale != 1 else "")
             + f"{'valid' if view.valid else f'INVALID ({len(view.violations)} violations)'}")
    if view.sim_overall is not None:
        title += f", simulated SLO attainment {view.sim_overall:.2%}"
    ax.set_title(title, fontsize=10)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    _services(fig, sx, view, colours)
    sx.legend([Patch(facecolor="white", edgecolor="black"), Patch(facecolor="0.55")],
              ["served / offered (service colour)", "worst latency / SLO"], fontsize=6, loc="lower right")
    return fig


class _Labels:
    """Text artists added to the figure in data coordinates of one axes: unclipped, so none pays for a clip path
    (the axes' `text` gives each one, and that was a fifth of the drawing's setup)."""

    def __init__(self, fig: Any, transform: Any) -> None:
        self.fig, self.transform = fig, transform

    def add(self, x: float, y: float, text: str | None, ha: str = "center", fontsize: float = LABEL_PT) -> None:
        if text is not None:
            self.fig.text(x, y, text, ha=ha, va="center", fontsize=fontsize, transform=self.transform)


def _rects(rects: list[tuple[float, float, float, float]], **style: Any) -> Any:
    """Rectangles (x, y, width, height) as one PolyCollection (one artist, vertices built by numpy)."""
    import numpy as np
    from matplotlib.collections import PolyCollection

    r = np.asarray(rects, dtype=float).reshape(-1, 4)
    x0, y0, x1, y1 = r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]
    verts = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                      np.stack([x0, y1], 1)], axis=1)
    return PolyCollection(verts, closed=True, **style)


def _services(fig: Any, sx: Any, view: PlanView, colours: dict[str, Any]) -> None:
    """The right panel: per service (top to bottom in instance order) two bars and its name."""
    n = len(view.services)
    size = max(4, min(8, 400 / max(1, n)))
    with_sim = any(s.sim_attainment is not None for s in view.services)
    served, late = [], []
    names = _Labels(fig, sx.get_yaxis_transform())  # x in axes units, y in data units
    values = _Labels(fig, sx.transData)
    for k, s in enumerate(view.services):
        y = n - 1 - k
        ratio = min(1.5, s.served / s.offered) if s.offered > 0 else 1.0
        served.append((0.0, y + 0.01, ratio, 0.38))
        late.append((0.0, y - 0.39, (s.worst_latency_ms or 0.0) / s.slo_ms, 0.38))
        names.add(-0.02, y, s.name, ha="right", fontsize=size)
        if s.sim_attainment is not None:
            values.add(1.52, y, f"{s.sim_attainment:.1%}", ha="left")
    sx.add_collection(_rects(served, facecolors=[colours[s.name] for s in view.services], linewidths=0))
    sx.add_collection(_rects(late, facecolors="0.55", linewidths=0))
    sx.axvline(1.0, color="black", linewidth=0.7)
    sx.set_yticks([])
    sx.set_xlim(0, 1.75 if with_sim else 1.5)
    sx.set_ylim(-0.6, n - 0.4)
    sx.set_title("per service" + (" (right: simulated attainment)" if view.sim_overall is not None else ""),
                 fontsize=9)
