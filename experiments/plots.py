"""Figures drawn from rows an experiment already wrote: grouped bars, metric-vs-size series and step lines over
time, saved atomically as PNG.

Every function takes plain data (sequences, or mappings of series name -> values; a pandas DataFrame works as such a
mapping) and a path, draws with matplotlib's Agg backend (imported lazily, so headless runs and scripts that never
plot need no display), writes the PNG to a temporary file in the same folder and moves it into place with
`os.replace`, and returns the path.  Missing values (None, NaN, "" in CSV rows) are left out of the figure, never
drawn as zero.  Nothing here runs a solver: callers turn their rows into series first.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

log = logging.getLogger(__name__)

LOG_SPAN = 100.0  # with log=None, use a log axis when the positive values span at least this factor


def number(x: object) -> float | None:
    """A CSV cell as a float; None for an empty, non-numeric or NaN cell."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _wants_log(values: Sequence[float | None], log_scale: bool | None) -> bool:
    if log_scale is not None:
        return log_scale
    vals = [v for v in values if v is not None]
    if not vals or min(vals) <= 0:
        return False
    return max(vals) / min(vals) >= LOG_SPAN


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write `fig` as PNG to `path` atomically (temporary file in the same folder, then os.replace) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png.tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=110)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a figure is as readable as the rows beside it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _pyplot().close(fig)
    log.info("wrote %s", path)
    return path


def _note(fig, ax, title: str, note: str | None) -> None:
    ax.set_title(title, fontsize=10)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, va="bottom", ha="left", wrap=True)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float | None]], path: str | os.PathLike, *,
                 ylabel: str, title: str = "", labels: Mapping[str, Sequence[str | None]] | None = None,
                 log_scale: bool | None = None, hline: float | None = None, ylim: tuple[float, float] | None = None,
                 note: str | None = None) -> Path:
    """One cluster of bars per group, one bar per series (None: no bar); `labels` writes text over bars."""
    plt = _pyplot()
    data = {name: [number(v) for v in vals] for name, vals in series.items()}
    for name, vals in data.items():
        if len(vals) != len(groups):
            raise ValueError(f"series {name!r} has {len(vals)} values for {len(groups)} groups")
    n = max(len(data), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(min(21.5, max(7.5, 2.5 + 0.3 * len(groups) * (n + 1))), 4.2))
    log_y = _wants_log([v for vals in data.values() for v in vals], log_scale)
    for i, (name, vals) in enumerate(data.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [math.nan if v is None else v for v in vals], width, label=name)
        if labels and name in labels:
            texts = [t or "" for t in labels[name]]
            ax.bar_label(bars, labels=texts, fontsize=6, padding=2, rotation=90 if len(groups) * n > 16 else 0)
    if hline is not None:
        ax.axhline(hline, color="grey", lw=0.8, ls="--")
    if log_y:
        ax.set_yscale("log")
    ax.margins(y=0.15)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xticks(range(len(groups)), list(groups), fontsize=7, rotation=0 if len(groups) <= 8 else 60,
                  ha="center" if len(groups) <= 8 else "right")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars and labels stay visible
    _note(fig, ax, title, note)
    return save_figure(fig, path)


def series_plot(series: Mapping[str, tuple[Sequence[object], Sequence[float | None]]], path: str | os.PathLike, *,
                xlabel: str, ylabel: str, title: str = "", categories: Sequence[str] | None = None,
                connect: bool = True, log_scale: bool | None = None, log_x: bool = False,
                styles: Mapping[str, Mapping[str, object]] | None = None, note: str | None = None) -> Path:
    """A metric against a size, one marker series per name (x, y); None/NaN y: no point (and a break in the line).

    x values are numbers (a log axis with `log_x`), or strings placed in the order of `categories` (then first
    appearance); `connect` draws lines between a series' points, else a scatter; `styles` passes matplotlib
    keywords per series."""
    plt = _pyplot()
    data = {name: (list(xs), [number(v) for v in ys]) for name, (xs, ys) in series.items()}
    categorical = any(isinstance(x, str) for xs, _ in data.values() for x in xs)
    order: list[str] = list(dict.fromkeys(str(c) for c in categories or ()))
    if categorical:
        for xs, _ in data.values():
            order += [str(x) for x in xs if str(x) not in order]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(order)) if categorical else 6.0, 4.2))
    for name, (xs, ys) in data.items():
        pos = [order.index(str(x)) if categorical else float(x) for x in xs]
        pts = sorted(zip(pos, [math.nan if y is None else y for y in ys]))
        style = {"marker": "o", "ms": 4, **(styles or {}).get(name, {})}
        if not connect:
            style["ls"] = "none"
        ax.plot([p for p, _ in pts], [y for _, y in pts], label=name, **style)
    if _wants_log([y for _, ys in data.values() for y in ys], log_scale):
        ax.set_yscale("log")
    if log_x and not categorical:
        ax.set_xscale("log")
        ticks = sorted({float(x) for xs, _ in data.values() for x in xs})
        if len(ticks) <= 15:  # the sizes themselves, as plain numbers
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
            ax.minorticks_off()
    if categorical:
        ax.set_xticks(range(len(order)), order, fontsize=7, rotation=0 if len(order) <= 10 else 45)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=1 if len(data) <= 5 else 2)
    _note(fig, ax, title, note)
    return save_figure(fig, path)


def stairs_plot(series: Mapping[str, tuple[Sequence[float], Sequence[float | None], Sequence[float]]],
                path: str | os.PathLike, *, xlabel: str, ylabel: str, event_label: str, title: str = "",
                styles: Mapping[str, Mapping[str, object]] | None = None, note: str | None = None) -> Path:
    """A quantity held over intervals, one step line per name, with events counted per interval.

    Each series is (edges, values, events): len(edges) == len(values) + 1 == len(events) + 1; value i holds from
    edges[i] to edges[i + 1] (None/NaN: a gap).  An interval with events gets a marker on its step (area grows
    with the count); a lower panel shows the events' running total over the same axis.  `styles` passes
    matplotlib keywords per series."""
    plt = _pyplot()
    fig, (ax, ax_ev) = plt.subplots(2, 1, figsize=(10.0, 6.2), sharex=True,
                                    gridspec_kw={"height_ratios": (2.2, 1.0)})
    for name, (edges, values, events) in series.items():
        edges = [float(e) for e in edges]
        vals = [number(v) for v in values]
        evs = [number(e) or 0.0 for e in events]
        if not (len(edges) == len(vals) + 1 == len(evs) + 1):
            plt.close(fig)
            raise ValueError(f"series {name!r}: {len(edges)} edges for {len(vals)} values and {len(evs)} events")
        style = {"lw": 1.3, **(styles or {}).get(name, {})}
        art = ax.stairs([math.nan if v is None else v for v in vals], edges, label=name, baseline=None, **style)
        color = art.get_edgecolor()
        hit = [i for i, e in enumerate(evs) if e > 0 and vals[i] is not None]
        if hit:
            ax.scatter([(edges[i] + edges[i + 1]) / 2 for i in hit], [vals[i] for i in hit],
                       s=[12 + 10 * evs[i] for i in hit], color=color, edgecolors="black", linewidths=0.4,
                       zorder=3)
        total = [0.0]
        for e in evs:
            total.append(total[-1] + e)
        ax_ev.stairs(total[1:], edges, baseline=None, color=color, lw=style["lw"], ls=style.get("ls", "-"))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.margins(y=0.08)
    ax.legend(fontsize=7, loc="best")
    ax_ev.set_ylabel(event_label, fontsize=8)
    ax_ev.set_xlabel(xlabel)
    ax_ev.grid(alpha=0.3)
    ax_ev.set_ylim(bottom=0)
    _note(fig, ax, title, note)
    return save_figure(fig, path)
