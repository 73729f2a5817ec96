"""A measured response: step sizes tabulated on a grid, linearly interpolated.

The user measures the mean up step dw_up[k] and down step dw_down[k] (both > 0, in weight units)
at conductances grid[0] < grid[1] < ... < grid[-1]; grid[0] and grid[-1] are the bounds.  The
response is the piecewise-linear interpolation

    q_plus(w) = alpha_plus * interp(w, grid, dw_up / dw_ref),   q_minus likewise with dw_down,

held constant beyond the grid ends (the bounds clip there anyway).

Normalisation (our choice, documented): dw_ref is the mean step (dw_up + dw_down)/2 at the
symmetric point of the table, i.e. where the interpolated up and down curves cross (exact, since
both are linear on the crossing segment); a table whose curves never cross uses the grid point
where |dw_up - dw_down| is smallest.  ``dw_min`` defaults to dw_ref, so by default every pulse moves
by exactly the measured step and dw_min is "the mean step at the symmetric point" as everywhere
else (ARCHITECTURE.md, Units).  Setting dw_min (or n_states) explicitly rescales all steps by
dw_min/dw_ref while keeping the measured shape.  When changing the table through ``configure``,
pass ``dw_min=None`` to recompute the default.

Device-to-device bound variations stretch the table: an element with bounds [w_min, w_max] reads
the table at grid[0] + (w - w_min) (grid[-1] - grid[0]) / (w_max - w_min).

Interpolation as plain arithmetic (torch and numba alike), c = [n, grid..., up..., down...]:
    q(x) = v_0 + sum_k slope_k (clip(x, g_k, g_{k+1}) - g_k),
with clip written through max(x, lo) = (x + lo + |x - lo|)/2 and min(x, hi) = (x + hi - |x - hi|)/2.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

from ..errors import ConfigError
from .base import Device


# The fused kernel compiles _q_up/_q_down alone with numba.njit, and numba cannot call plain Python
# helpers, so both functions spell the whole interpolation out (they differ only in the table offset).
def _q_up(w, a, w_max, w_min, c):
    n = int(c[0])
    x = c[1] + (w - w_min) * (c[n] - c[1]) / (w_max - w_min)  # element range -> table range
    off = 1 + n  # up table
    q = c[off] + 0 * x
    for k in range(n - 1):
        g0, g1 = c[1 + k], c[2 + k]
        lo = (x + g0 + abs(x - g0)) / 2  # max(x, g0)
        cl = (lo + g1 - abs(lo - g1)) / 2  # min(max(x, g0), g1)
        q = q + (c[off + k + 1] - c[off + k]) / (g1 - g0) * (cl - g0)
    return a * q


def _q_down(w, a, w_max, w_min, c):
    n = int(c[0])
    x = c[1] + (w - w_min) * (c[n] - c[1]) / (w_max - w_min)
    off = 1 + 2 * n  # down table
    q = c[off] + 0 * x
    for k in range(n - 1):
        g0, g1 = c[1 + k], c[2 + k]
        lo = (x + g0 + abs(x - g0)) / 2
        cl = (lo + g1 - abs(lo - g1)) / 2
        q = q + (c[off + k + 1] - c[off + k]) / (g1 - g0) * (cl - g0)
    return a * q


# An example table (a mildly asymmetric, soft-bounds-like device), so that the family works without
# arguments (registry, CLI); real use passes a measured table or reads one with ``from_csv``.
_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)
_UP = (0.0020, 0.0016, 0.0011, 0.0006, 0.0001)
_DOWN = (0.0001, 0.0005, 0.0009, 0.0014, 0.0019)


def reference_step(grid, dw_up, dw_down) -> float:
    """dw_ref: mean step at the crossing of the interpolated up and down curves (module docstring)."""
    d = [u - v for u, v in zip(dw_up, dw_down)]
    for k in range(len(grid) - 1):
        if d[k] == 0:
            return (dw_up[k] + dw_down[k]) / 2
        if d[k] * d[k + 1] < 0:
            t = d[k] / (d[k] - d[k + 1])  # linear crossing inside segment k
            up = dw_up[k] + t * (dw_up[k + 1] - dw_up[k])
            down = dw_down[k] + t * (dw_down[k + 1] - dw_down[k])
            return (up + down) / 2
    k = min(range(len(grid)), key=lambda i: abs(d[i]))
    return (dw_up[k] + dw_down[k]) / 2


def _numbers(field: str, values) -> tuple:
    """A table as floats; a string (``--set grid=-1,0,1``) is split at commas."""
    items = values.split(",") if isinstance(values, str) else values
    try:
        numbers = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise ConfigError(f"{field} must be a list of numbers (e.g. -1,0,1), got {values!r}") from None
    if not all(math.isfinite(v) for v in numbers):
        raise ConfigError(f"{field} must hold finite numbers, got {values!r}")
    return numbers


@dataclass(frozen=True)
class PiecewiseStep(Device):
    """Measured step-size table, linearly interpolated; bounds are the grid ends."""

    name = "piecewise"
    source = "user-measured pulse response (up/down step vs conductance), linear interpolation"

    dw_min: float | None = None  # None: the table's mean step at its symmetric point
    grid: tuple = _GRID
    dw_up: tuple = _UP
    dw_down: tuple = _DOWN

    derived_fields = {"w_max": "grid (its last point)", "w_min": "grid (its first point)"}

    q_up_fn = staticmethod(_q_up)
    q_down_fn = staticmethod(_q_down)

    def __post_init__(self):
        grid, up, down = (_numbers(f, getattr(self, f)) for f in ("grid", "dw_up", "dw_down"))
        if len(grid) < 2:
            raise ConfigError(f"grid needs at least 2 points, got {len(grid)}")
        if any(b <= a for a, b in zip(grid, grid[1:])):
            raise ConfigError(f"grid must be strictly increasing, got {grid}")
        for field, table in (("dw_up", up), ("dw_down", down)):
            if len(table) != len(grid):
                raise ConfigError(f"{field} has {len(table)} values but grid has {len(grid)}")
            if any(not (v >= 0) for v in table):
                raise ConfigError(f"{field} must hold step sizes >= 0, got {table}")
        ref = reference_step(grid, up, down)
        if not ref > 0:
            raise ConfigError("dw_up/dw_down: the mean step at the symmetric point is 0")
        for field, value in (("grid", grid), ("dw_up", up), ("dw_down", down), ("w_min", grid[0]),
                             ("w_max", grid[-1]), ("dw_min", ref if self.dw_min is None else self.dw_min)):
            object.__setattr__(self, field, value)
        super().__post_init__()

    @property
    def dw_ref(self) -> float:
        return reference_step(self.grid, self.dw_up, self.dw_down)

    def shape_constants(self) -> tuple:
        ref = self.dw_ref
        return (float(len(self.grid)), *self.grid, *(v / ref for v in self.dw_up), *(v / ref for v in self.dw_down))

    @classmethod
    def from_csv(cls, path, **kw) -> "PiecewiseStep":
        """Read columns w, dw_up, dw_down (a non-numeric first row is taken as a header)."""
        rows = []
        with open(path, newline="") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if not row or row[0].lstrip().startswith("#"):
                    continue
                try:
                    values = [float(v) for v in row[:3]]
                except ValueError:
                    if i == 0:
                        continue  # header
                    raise ConfigError(f"{path}: row {i + 1} is not numeric: {row}") from None
                if len(values) != 3:
                    raise ConfigError(f"{path}: row {i + 1} needs 3 columns w, dw_up, dw_down, got {row}")
                rows.append(values)
        if not rows:
            raise ConfigError(f"{path}: no data rows")
        grid, up, down = zip(*rows)
        return cls(grid=grid, dw_up=up, dw_down=down, **kw)
