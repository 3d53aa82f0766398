"""Solo latency surfaces L_s(b, p) for one (model, procs): a physics prior times interpolated residuals, made
monotone on a dense grid.

The prior is a soft roofline: a batch of b requests on a partition of p (fraction f = p / capacity) takes
`L = (F^k + (c * b^beta / f^gamma)^k)^(1/k)`: a floor F that more SMs or a larger batch do not change (kernel
launch and host work: PyTorch eager on the A100 data is flat at small batches) and a compute part that grows with
the batch and shrinks with the share of SMs.  With beta, gamma >= 0 it is monotone.  iGniter's analytical form
(Xu et al., TPDS'23, `igniter-algorithm.py`: `(k1 b^2 + k2 b + k3) / (r + k4) + k5`) is the comparison prior.

On top of the prior, log residuals at the profiled points are interpolated: linearly in b along each profiled
size, then linearly in 1/p across the sizes profiled at that batch (Amdahl: `a + c/p` is exact there).  At every
profiled point the surface therefore reproduces the measurement; between them the prior gives the shape (the
knee between floor and compute-bound).  The result is evaluated on a dense grid (integer batches, sizes in small
steps) and projected onto monotone surfaces (more SMs never slower, a larger batch never faster) by averaging the
smallest monotone majorant and the largest monotone minorant; queries interpolate bilinearly in (b, 1/p) on that
grid, which keeps monotonicity everywhere inside the profiled range.

Outside the profiled range (a batch or size that no profile covers) the surface says so; the extrapolation rules,
all upper bounds under the monotonicity assumptions, are in `EXTRAPOLATION_RULES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from stsched.errors import InputError

#: Solo forms: prior and residual interpolation.  `roofline-hybrid` is the project's default.
SOLO_FORMS: dict[str, tuple[str, str]] = {
    "roofline-hybrid": ("roofline", "inv"),  # physics prior x residuals interpolated in (b, 1/p)
    "roofline": ("roofline", "none"),  # the parametric prior alone
    "grid-amdahl": ("none", "inv"),  # pure interpolation, linear in b and in 1/p
    "grid-linear": ("none", "lin"),  # pure interpolation, linear in b and in p (gpulet-style tables)
    "igniter": ("igniter", "none"),  # iGniter's (k1 b^2 + k2 b + k3) / (p + k4) + k5
}

EXTRAPOLATION_RULES = (
    "size above the largest profiled at that batch: the value there (more SMs never slower: an upper bound)",
    "size below the smallest profiled at that batch: that value times p_min/p (perfect scaling: an upper bound)",
    "batch above the largest profiled: the value there times b/b_max (batching never raises per-request cost)",
    "batch below the smallest profiled: the value there (a larger batch is never faster: an upper bound)",
)

ROOFLINE_BOUNDS = (np.array([-12.0, -25.0, 0.0, 0.0, -2.0]), np.array([12.0, 12.0, 1.5, 1.5, 4.0]))


def roofline_log(theta: np.ndarray, b: np.ndarray, f: np.ndarray) -> np.ndarray:
    """log L of the soft roofline; theta = (log F, log c, beta, gamma, log k)."""
    lf, lc, beta, gamma, lk = theta
    k = math.exp(lk)
    return np.logaddexp(k * lf, k * (lc + beta * np.log(b) - gamma * np.log(f))) / k


def igniter_log(theta: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """log of iGniter's active-time form (k1 b^2 + k2 b + k3) / (p + k4) + k5, floored at 1e-6 ms."""
    k1, k2, k3, k4, k5 = theta
    return np.log(np.maximum((k1 * b * b + k2 * b + k3) / (p + k4) + k5, 1e-6))


#: a surface on fewer profiled points fits no prior: it is those measurements and the extrapolation rules alone
MIN_PRIOR_ROWS = 3


def fit_prior(kind: str, b: np.ndarray, p: np.ndarray, lat: np.ndarray, capacity: float) -> tuple[float, ...]:
    """Least-squares fit (log space) of a prior to the profiled points; () for no prior."""
    y = np.log(lat)
    if kind == "none" or len(y) < MIN_PRIOR_ROWS:
        return ()
    if kind == "roofline":
        f = p / capacity
        best = None
        for lk0 in (0.0, 1.5, 3.0):
            for beta0 in (0.5, 1.0):
                th0 = np.array([y.min(), y.max() - math.log(b.max()) + 0.5 * math.log(f.min()), beta0, 0.8, lk0])
                th0 = np.clip(th0, ROOFLINE_BOUNDS[0] + 1e-6, ROOFLINE_BOUNDS[1] - 1e-6)
                r = least_squares(lambda th: roofline_log(th, b, f) - y, th0, bounds=ROOFLINE_BOUNDS)
                if best is None or r.cost < best.cost:
                    best = r
        return tuple(float(v) for v in best.x)
    if kind == "igniter":
        lo = np.array([-np.inf, -np.inf, -np.inf, -float(p.min()) + 1e-3, -np.inf])
        r = least_squares(lambda th: igniter_log(th, b, p) - y, np.array([0.0, 1.0, 1.0, 0.0, 0.1]),
                          bounds=(lo, np.full(5, np.inf)))
        return tuple(float(v) for v in r.x)
    raise InputError(f"unknown solo prior {kind!r}")


def prior_log(kind: str, theta: tuple[float, ...], b: np.ndarray, p: np.ndarray, capacity: float) -> np.ndarray:
    if kind == "none" or not theta:
        return np.zeros(np.broadcast(b, p).shape)
    if kind == "roofline":
        return roofline_log(np.asarray(theta), b, p / capacity)
    return igniter_log(np.asarray(theta), b, p)


def _interp_columns(sizes: np.ndarray, cols: list[tuple[np.ndarray, np.ndarray]], bq: np.ndarray,
                    pq: np.ndarray, mode: str) -> np.ndarray:
    """Coverage-aware interpolation: along b within each profiled size, then across the sizes that cover b.

    `cols[j]` = (batches, values) profiled at `sizes[j]` (ascending).  Returns NaN where (b, p) is not inside
    the range covered at b.  mode "inv": linear in 1/p, "lin": linear in p.
    """
    q = len(bq)
    vals = np.full((q, len(sizes)), np.nan)
    for j, (xb, yv) in enumerate(cols):
        inside = (bq >= xb[0]) & (bq <= xb[-1])
        vals[inside, j] = np.interp(bq[inside], xb, yv)
    idx = np.arange(len(sizes))
    cov = ~np.isnan(vals)
    lo = np.where(cov & (sizes[None, :] <= pq[:, None]), idx[None, :], -1).max(axis=1)
    hi = np.where(cov & (sizes[None, :] >= pq[:, None]), idx[None, :], len(sizes)).min(axis=1)
    ok = (lo >= 0) & (hi < len(sizes))
    out = np.full(q, np.nan)
    if not ok.any():
        return out
    rows = np.nonzero(ok)[0]
    lo_, hi_ = lo[ok], hi[ok]
    s_lo, s_hi, p = sizes[lo_], sizes[hi_], pq[ok]
    v_lo, v_hi = vals[rows, lo_], vals[rows, hi_]
    same = hi_ == lo_
    if mode == "inv":
        w = np.where(same, 0.0, (1.0 / p - 1.0 / s_lo) / np.where(same, 1.0, 1.0 / s_hi - 1.0 / s_lo))
    else:
        w = np.where(same, 0.0, (p - s_lo) / np.where(same, 1.0, s_hi - s_lo))
    out[ok] = v_lo + w * (v_hi - v_lo)
    return out


def monotone_project(grid: np.ndarray) -> np.ndarray:
    """Mean of the smallest majorant and the largest minorant that are nondecreasing along axis 0 (batch) and
    nonincreasing along axis 1 (size ascending); NaN cells (not covered) stay NaN and are ignored."""
    mask = np.isnan(grid)
    up = np.fmax.accumulate(np.fmax.accumulate(grid, axis=0)[:, ::-1], axis=1)[:, ::-1]
    down = np.fmin.accumulate(np.fmin.accumulate(grid[::-1], axis=0)[::-1], axis=1)
    out = 0.5 * (up + down)
    out[mask] = np.nan
    return out


def dense_batches(bmax: int, step_above_64: int) -> np.ndarray:
    """Integer batches 1..min(64, bmax), then every `step_above_64` up to bmax (bmax included)."""
    b = list(range(1, min(64, bmax) + 1))
    b += list(range(64 + step_above_64, bmax + 1, step_above_64))
    if b[-1] != bmax:
        b.append(bmax)
    return np.asarray(b, dtype=float)


def dense_sizes(profiled: np.ndarray, steps: int) -> np.ndarray:
    lo, hi = float(profiled.min()), float(profiled.max())
    extra = np.linspace(lo, hi, steps + 1) if hi > lo else np.array([lo])
    return np.unique(np.round(np.concatenate([profiled, extra]), 9))


@dataclass(frozen=True, eq=False)
class Grid:
    """A surface on the dense grid: values (NaN = not covered), and how to read between knots."""

    batches: np.ndarray
    sizes: np.ndarray
    values: np.ndarray  # shape (len(batches), len(sizes))
    mode: str  # "inv" (linear in 1/p) or "lin"

    def lookup(self, b: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Bilinear interpolation; NaN where a needed corner is not covered or (b, p) is off the grid."""
        B, S, V = self.batches, self.sizes, self.values
        i0 = np.clip(np.searchsorted(B, b, side="right") - 1, 0, len(B) - 1)
        i1 = np.minimum(i0 + 1, len(B) - 1)
        wb = np.where(B[i1] > B[i0], (b - B[i0]) / np.where(B[i1] > B[i0], B[i1] - B[i0], 1.0), 0.0)
        j0 = np.clip(np.searchsorted(S, p, side="right") - 1, 0, len(S) - 1)
        j1 = np.minimum(j0 + 1, len(S) - 1)
        if self.mode == "inv":
            span = 1.0 / S[j1] - 1.0 / S[j0]
            wp = np.where(S[j1] > S[j0], (1.0 / p - 1.0 / S[j0]) / np.where(span != 0, span, 1.0), 0.0)
        else:
            wp = np.where(S[j1] > S[j0], (p - S[j0]) / np.where(S[j1] > S[j0], S[j1] - S[j0], 1.0), 0.0)
        off = (b < B[0]) | (b > B[-1]) | (p < S[0]) | (p > S[-1])
        out = np.zeros(np.shape(b))
        for ii, wi in ((i0, 1.0 - wb), (i1, wb)):
            for jj, wj in ((j0, 1.0 - wp), (j1, wp)):
                w = wi * wj
                v = V[ii, jj]
                out = out + np.where(w > 0, w * np.nan_to_num(v, nan=0.0), 0.0)
                off = off | ((w > 0) & np.isnan(v))
        out[off] = np.nan
        return out


@dataclass(frozen=True, eq=False)
class SoloSurface:
    """The fitted solo latency (and utilisation, throughput ratio) of one (model, procs)."""

    model: str
    procs: int
    capacity: float
    form: str
    prior: tuple[float, ...]
    points: dict[str, np.ndarray]  # batch, size, latency_ms, l2_util, dram_util, tput_ratio (NaN = absent)
    dense_steps: int = 40
    batch_step: int = 8
    grids: dict[str, Grid] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.grids:
            self.grids.update(self._build())

    # -- construction ---------------------------------------------------------------------------------
    def _columns(self, col: str, transform=None) -> tuple[np.ndarray, list]:
        b, s, v = self.points["batch"], self.points["size"], self.points[col]
        keep = ~np.isnan(v)
        b, s, v = b[keep], s[keep], v[keep]
        if transform is not None:
            v = transform(b, s, v)
        sizes = np.unique(s)
        cols = []
        for size in sizes:
            m = s == size
            order = np.argsort(b[m])
            cols.append((b[m][order], v[m][order]))
        return sizes, cols

    def _build(self) -> dict[str, Grid]:
        kind, mode = SOLO_FORMS[self.form]
        if mode == "none" and not self.prior:  # too few points for the prior: interpolate instead
            kind, mode = "none", "inv"
        pts = self.points
        B = dense_batches(int(pts["batch"].max()), self.batch_step)
        S = dense_sizes(np.unique(pts["size"]), self.dense_steps)
        bb, ss = np.meshgrid(B, S, indexing="ij")
        bq, sq = bb.ravel(), ss.ravel()
        prior = prior_log(kind, self.prior, bq, sq, self.capacity)

        def resid(b, s, v):
            return np.log(v) - prior_log(kind, self.prior, b, s, self.capacity)

        sizes, cols = self._columns("latency_ms", resid)
        if mode == "none":  # parametric only: covered where the profile covers, value = prior
            r = _interp_columns(sizes, cols, bq, sq, "inv")
            logl = np.where(np.isnan(r), np.nan, prior)
        else:
            logl = prior + _interp_columns(sizes, cols, bq, sq, mode)
        lat = monotone_project(logl.reshape(bb.shape))
        grids = {"log_latency": Grid(B, S, lat, "inv")}
        for col in ("l2_util", "dram_util", "tput_ratio"):
            if np.isnan(pts[col]).all():
                continue
            sz, cl = self._columns(col)
            grids[col] = Grid(B, S, _interp_columns(sz, cl, bq, sq, "lin").reshape(bb.shape), "lin")
        grids["elasticity"] = Grid(B, S, _elasticity(lat, S), "inv")
        return grids

    # -- queries --------------------------------------------------------------------------------------
    def latency(self, b: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Solo latency (ms); NaN outside the profiled range (see `latency_extrapolated`)."""
        return np.exp(self.grids["log_latency"].lookup(b, p))

    def value(self, name: str, b: np.ndarray, p: np.ndarray) -> np.ndarray:
        g = self.grids.get(name)
        return np.full(np.shape(b), np.nan) if g is None else g.lookup(b, p)

    def covered_sizes(self, b: float, name: str = "log_latency") -> np.ndarray:
        g = self.grids[name]
        i = int(np.clip(np.searchsorted(g.batches, b, side="right") - 1, 0, len(g.batches) - 1))
        i1 = min(i + 1, len(g.batches) - 1) if g.batches[i] < b else i
        ok = ~np.isnan(g.values[i]) & ~np.isnan(g.values[i1])
        return g.sizes[ok]

    def extrapolate(self, name: str, b: float, p: float) -> tuple[float, str]:
        """Value of surface `name` at an uncovered (b, p) by the rules in EXTRAPOLATION_RULES; (value, rule).

        Latency uses the upper-bound rules; utilisation and throughput ratio hold the nearest covered value.
        """
        g = self.grids[name]
        rows = [float(r) for r in g.batches if len(self.covered_sizes(r, name))]
        if not rows:
            return math.nan, "no profiled point"
        lat = name == "log_latency"
        scale, rule = 1.0, []
        if b > rows[-1] or (b >= rows[0] and not len(self.covered_sizes(b, name))):
            bq = max(r for r in rows if r <= b)
            scale = b / bq if lat else 1.0
            rule.append(EXTRAPOLATION_RULES[2] if lat else f"value at batch {bq:g} held")
        elif b < rows[0]:
            bq = rows[0]
            rule.append(EXTRAPOLATION_RULES[3] if lat else f"value at batch {bq:g} held")
        else:
            bq = float(b)
        cs = self.covered_sizes(bq, name)
        pq = float(np.clip(p, cs.min(), cs.max()))
        v = float(g.lookup(np.array([bq]), np.array([pq]))[0])
        if not lat:
            if pq != p:
                rule.append(f"value at size {pq:g} held")
            return v, "; ".join(rule)
        v = math.exp(v) * scale
        if p < cs.min():
            v *= cs.min() / p
            rule.append(EXTRAPOLATION_RULES[1])
        elif p > cs.max():
            rule.append(EXTRAPOLATION_RULES[0])
        return v, "; ".join(rule)


def _elasticity(loglat: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """SM elasticity -d ln L / d ln p at every dense knot (mean of the adjacent segments; NaN-aware)."""
    lp = np.log(sizes)
    seg = -(loglat[:, 1:] - loglat[:, :-1]) / (lp[1:] - lp[:-1])
    left = np.concatenate([np.full((loglat.shape[0], 1), np.nan), seg], axis=1)
    right = np.concatenate([seg, np.full((loglat.shape[0], 1), np.nan)], axis=1)
    both = np.stack([left, right])
    with np.errstate(invalid="ignore"):
        cnt = (~np.isnan(both)).sum(axis=0)
        out = np.where(cnt > 0, np.nansum(both, axis=0) / np.maximum(cnt, 1), np.nan)
    out[np.isnan(loglat)] = np.nan
    return out


def fit_surface(model: str, procs: int, capacity: float, form: str, points: dict[str, np.ndarray],
                dense_steps: int, batch_step: int) -> SoloSurface:
    """Fit the prior of `form` to one (model, procs)'s points and build its surface."""
    if form not in SOLO_FORMS:
        raise InputError(f"unknown solo form {form!r} (known: {', '.join(SOLO_FORMS)})")
    kind, _ = SOLO_FORMS[form]
    prior = fit_prior(kind, points["batch"], points["size"], points["latency_ms"], capacity)
    return SoloSurface(model, procs, capacity, form, prior, points, dense_steps, batch_step)
