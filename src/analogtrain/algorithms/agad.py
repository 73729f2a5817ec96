"""AGAD ("TTv4"; Rasch et al. 2024 = L1 eq. 13, papers.md §2.5): c-TTv2 with a digital, dynamic reference.

As c-TTv2 (``cttv2.py``: chopped inputs on P, buffer H, threshold transfer onto W), but P needs no
programmed reference: its raw reading ``a_k = P e_k`` is compared with a digital reference per column.

    p_k   <- (1 - m) p_k + m a_k          running mean of the recent reads of column k (``p_mean``, eq. 13 [I])
    z_k    = c_k (a_k - p_ref_k)          (``p_ref``: the running mean at column k's last chopper flip)
    H[:, k] <- H[:, k] + beta z_k;  threshold pulses onto W as TT-v2
    if c_k flips after this read:  p_ref_k <- p_k

with ``m = min(tail_weightening / n_samples, 1)``, ``n_samples`` = the chopper period in reads
(``max(ceil(1/p), 2)`` periodic, ``1/p`` random; aihwkit's rule, papers.md §2.5).  Until column k's
first flip it has no reference: its reads feed the running mean only, and W receives nothing from
it (the first chopper period).  Because z_k is a difference of two reads of the same array, any
constant offset of P (a wrong reference, the symmetric point) cancels: AGAD does not rely on the
device decaying towards a calibrated zero (L1: invariant to the reference offset).

[I] L1's eq. 13 sign is ambiguous in the extracted text; we use the positive EMA as aihwkit does.
The effective weight is ``W + gamma (P - p_ref) diag(c)`` (gamma = 0 by default).
"""

from __future__ import annotations

import numpy as np
import torch

from .cttv2 import CHOP_OPTIONS, ChoppedTTv2
from .steps import Option, chop_period, column_index, decay_filter, read_columns


class AGAD(ChoppedTTv2):
    """AGAD: chopped fast array, running-mean reference set at chopper flips (papers.md §2.5)."""

    name = "agad"
    OPTIONS = {**CHOP_OPTIONS, "tail_weightening": Option(5.0, lo=0.0, lo_open=True, help=(
        "m: P's running mean moves by min(m / chopper period, 1) of each read (eq. 13)"))}
    # on a symmetric device W must be able to follow: no cap on the pulses per transfer
    ideal_options = {"gamma": 0.4, "max_pulses": 0}

    def make(self) -> None:
        super().make()
        self.new_buffer("p_mean")
        self.new_buffer("p_ref")
        self.buffers["ref_set"] = torch.zeros(self.shape[1], dtype=torch.float64, device=self.device)

    def program(self, w) -> None:
        super().program(w)
        for k in ("p_mean", "p_ref", "ref_set"):
            self.buffers[k].zero_()

    def mix(self):
        g = self.opts["gamma"]
        if not g:  # scalar zeros: skipped by the mixed read without reducing a vector (as c-TTv2)
            return [(1.0, self.W), (0.0, self.P), (0.0, self.buffers["p_ref"])]
        gc = g * self.buffers["chop"]
        return [(1.0, self.W), (gc, self.P), (-gc, self.buffers["p_ref"])]

    @property
    def mean_rate(self) -> float:
        """m = min(tail_weightening / n_samples, 1), n_samples = the chopper period in reads."""
        p = self.opts["in_chop_prob"]
        if p <= 0:
            return 1.0
        n_samples = (1.0 / p) if self.opts["in_chop_random"] else chop_period(p)
        return min(self.opts["tail_weightening"] / n_samples, 1.0)

    def transfer(self, cols, beta: float) -> None:
        if self._numpy_columns(cols):
            return self._transfer_np(cols, beta)
        a = read_columns(self.P, cols).double()
        self.buffers["p_mean"][:, cols] = decay_filter(self.buffers["p_mean"][:, cols], a, self.mean_rate)
        valid = self.buffers["ref_set"][cols]  # 0 during a column's first chopper period
        z = valid * self.buffers["chop"][cols] * (a - self.buffers["p_ref"][:, cols])
        self.buffer_transfer(cols, z, beta)
        flips = self.advance_choppers(cols)
        flipped = cols[flips]
        if flipped.numel():  # most reads flip nothing: skip the empty index copies
            self.buffers["p_ref"][:, flipped] = self.buffers["p_mean"][:, flipped]
            self.buffers["ref_set"][flipped] = 1.0

    def _transfer_np(self, cols, beta: float) -> None:
        """``transfer`` of distinct columns of CPU buffers: the same float64 operations in the same order
        on numpy views of the buffers (a column is small: torch's per-call cost would dominate)."""
        at = column_index(cols)
        p_mean, p_ref = self.buffers["p_mean"].numpy(), self.buffers["p_ref"].numpy()
        a = read_columns(self.P, cols).numpy().astype(np.float64)
        p_mean[:, at] = p_mean[:, at] + self.mean_rate * (a - p_mean[:, at])  # decay_filter
        z = self.buffers["ref_set"].numpy()[at] * self.buffers["chop"].numpy()[at] * (a - p_ref[:, at])
        self.buffer_transfer(cols, torch.from_numpy(z), beta)
        flips = self.advance_choppers(cols).numpy()
        if flips.any():
            flipped = cols.numpy()[flips]
            p_ref[:, flipped] = p_mean[:, flipped]
            self.buffers["ref_set"].numpy()[flipped] = 1.0
