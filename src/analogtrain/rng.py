"""Counter-based random numbers shared by the torch reference path and the numba fast path.

The pulse-level update draws one Bernoulli trial per (sample, time slot, row or column) and one
normal per pulse.  Drawing them from a counter-based generator makes every draw a pure function of
(seed, counter): the fast kernel can compute only the draws it needs, in any order and on any
thread, and the dense torch reference reproduces exactly the same numbers.  The seed of each update
call is drawn from the tile's ``torch.Generator``, so one seed still reproduces a run bit for bit
and the generator state in a checkpoint is the whole random state.

Mixer: the SplitMix64 output function (Steele, Lea, Flood 2014) applied to seed + (counter + 1) *
golden gamma.  Uniforms take 32 bits (two per 64-bit word).  Normals come from a 2**16-entry
inverse-CDF table (quantiles (k + 1/2) / 2**16, rescaled to unit variance; the largest value is
about 4.3 sigma), indexed by the top 16 bits: a close, cheap stand-in for a Gaussian draw, used
only for cycle-to-cycle pulse noise.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

_M = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
TWO_POW_M32 = 2.0**-32


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _normal_table() -> np.ndarray:
    k = torch.arange(1 << 16, dtype=torch.float64)
    q = torch.special.ndtri((k + 0.5) / (1 << 16))
    return (q / q.square().mean().sqrt()).numpy()


NORMAL_TABLE = _normal_table()
_NORMAL_TABLE_T = torch.from_numpy(NORMAL_TABLE)


# ---- torch (int64 tensors; wrapping multiply, logical shifts emulated by masking) --------------
def _shr(z: torch.Tensor, k: int) -> torch.Tensor:
    return (z >> k) & ((1 << (64 - k)) - 1)


def hash_torch(seed: int, ctr: torch.Tensor) -> torch.Tensor:
    """SplitMix64 of (seed, ctr) for an int64 counter tensor, as int64 bit patterns."""
    z = (ctr + 1) * _signed(GOLDEN) + _signed(seed & _M)
    z = (z ^ _shr(z, 30)) * _signed(MIX1)
    z = (z ^ _shr(z, 27)) * _signed(MIX2)
    return z ^ _shr(z, 31)


def uniform_pair_torch(seed: int, ctr: torch.Tensor):
    """Two independent uniforms in [0, 1) (float64) per counter: high and low 32 bits."""
    z = hash_torch(seed, ctr)
    return _shr(z, 32).double() * TWO_POW_M32, (z & 0xFFFFFFFF).double() * TWO_POW_M32


def normal_torch(seed: int, ctr: torch.Tensor) -> torch.Tensor:
    """Table normal (float64) per counter."""
    idx = _shr(hash_torch(seed, ctr), 48)
    return _NORMAL_TABLE_T.to(ctr.device)[idx]


# ---- numba (uint64 scalars) -----------------------------------------------------------------
@numba.njit(inline="always")
def hash_nb(seed, ctr):
    z = (np.uint64(ctr) + np.uint64(1)) * np.uint64(GOLDEN) + np.uint64(seed)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


@numba.njit(inline="always")
def normal_nb(seed, ctr, table):
    return table[hash_nb(seed, ctr) >> np.uint64(48)]


def draw_seed(generator: torch.Generator | None) -> int:
    """A fresh 63-bit stream seed from the tile's generator (advances it by one draw)."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator, dtype=torch.int64).item())
