"""RIDER and E-RIDER: residual learning with dynamic symmetric-point tracking (P5, papers.md §7).

P5 writes the residual array's symmetric point (SP) estimate as a digital moving average Q of P and
takes the residual P - Q instead of P (our sign convention is P5's: P accumulates the negative gradient).

RIDER (P5 Alg. 2; eq. 11a, 12, 11b), per step k:

    W_bar_k = W_k + gamma (P_k - Q_k)                                   (gradient taken here)
    P_{k+1} = P_k - alpha grad * F_p(P_k) - alpha |grad| * G_p(P_k)      (11a: pulsed, P's response)
    Q_{k+1} = (1 - eta) Q_k + eta P_{k+1}                                (12: digital, ``track``)
    W_{k+1} = W_k + beta (P_{k+1} - Q_k) * F_w(W_k) - beta |P_{k+1} - Q_k| * G_w(W_k)   (11b)

Q low-passes P (Lemma 3.10: ``H(z) = eta / (1 - (1 - eta) z^-1)``): the gradient part of P is
fast, the drift towards the SP (``|grad| * G_p``) slow, so Q -> SP and the residual P - Q reads zero
where P's response is symmetric -- no zero-shifting needed (Thm 3.7).

E-RIDER (P5 Alg. 3; eq. 17, 18a/b [I: reconstructed, papers.md §7(b)]) adds a chopper c_k in {+-1}
(c_0 = 1; eq. 17: flipped with probability ``in_chop_prob``, or every max(ceil(1/p), 2) reads with
``in_chop_random = false``) and an analog copy Q~ of Q that P is read against (here: P's reference
array, ``program_reference``), reprogrammed from the digital Q only when the chopper flips:

    W_bar_k = W_k + gamma c_k (P_k - Q~_k);   P_{k+1} = P_k - alpha c_k grad * F_p - alpha |grad| * G_p
    Q_{k+1} = (1 - eta) Q_k + eta P_{k+1};    W_{k+1} = W_k + beta c_k (P_{k+1} - Q~_k) (pulsed)

The chopper flips the gradient's sign in P but not the drift, so the drift is the low-frequency part Q
keeps.  RIDER is E-RIDER with p = 0 and Q~ = Q (Alg. 2 subtracts the digital Q_k itself; here it is
applied digitally in the mixed read and the transfer).

[I] One chopper per input column, flipped after that column's read (as the input choppers of c-TTv2 and
AGAD, whose ``in_chop_prob`` / ``in_chop_random`` fields P5's E-RIDER tables set).  In the theory form
every column is read every step and periodic choppers flip together: that is eq. 17's scalar c_k.  In
the practical form a column is read once every ``in_size`` steps; a scalar chopper flipping every 20
steps would then mix both signs of the gradient into P between two reads of a column (measured: the
FCN of P5 Table 2 stays at 15 % after 3 epochs on the MNIST subset, 60 % with p = 0), a chopper per
column keeps its sign constant between its reads (54 % with p = 0.05).

Caution (measured in ``p5-tracking``): with 11b and 12 as reconstructed, W and Q move along the same
residual (Delta W = beta (P_{k+1} - Q_k), Delta Q = eta (P_{k+1} - Q_k)), so on a symmetric W device
``W - (beta/eta) Q`` is invariant and RIDER (p = 0) cannot bring both Q to the SP and W to W* from a
generic start; E-RIDER's chopper flips W's update but not Q's and does track.

Forms (``n_columns``, ``transfer_every``, ``buffer``, as ``tiki_taka.py`` / ``ttv2.py``):
* theory form: ``n_columns = in_size``, ``transfer_every = 1``, ``buffer = false`` -- whole P read every
  step, Q updated, 11b written as a pulsed rank-one transfer onto W;
* practical form (P5's experiments, aihwkit-style, the default): ``n_columns`` columns per transfer
  (cyclic), Q updated on the read columns, the residual accumulated in a digital buffer H and sent to
  W as threshold pulses (TT-v2's step, options ``threshold_scale``, ``max_pulses``, ...).

P is read against its own reference array (``R0``: zero, P5's offset reference ``SP + mu_r + sigma_r xi``
from the tile's ``ReferenceConfig``, or a zero-shifting estimate), and Q tracks that reading; E-RIDER's
copy Q~ is programmed on top of it (P's reference = R0 + Q~).

Two-stage baseline (P5 Alg. 4) = ``rider`` with ``calibration = "zero-shift"`` (``calibration_pulses`` N
random/cyclic pulses per element of P before training; the estimate becomes P's reference R0, so
``Q = 0`` reads as P5's ``Q = W_sp estimate``) and ``track = false`` (Q stays 0): residual learning
against a calibrated, static SP estimate.  (Not registered under its own name: the registry's shared
tests would zero-shift every layer of their model.)

Letters: alpha = fast lr, beta = transfer lr (``scaled_lr`` rules of ``tiki_taka.py``), gamma the
mixing weight (P5 uses 0.1), eta the moving-average rate.  Q's rate is per read of a column.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .steps import (ArrayAlgorithm, Gradient, Option, advance_choppers, buffer_pulses, decay_filter, next_columns,
                    program_reference, pulse_gradient, read_columns, transfer_columns)
from .cttv2 import CHOP_OPTIONS
from .ttv2 import BUFFER_OPTIONS, buffer_rate
from .zero_shift import calibrate

RIDER_OPTIONS = {
    **BUFFER_OPTIONS,
    "gamma": BUFFER_OPTIONS["gamma"].but(default=0.1, help="mixing weight: the gradient is taken at W + gamma (P - Q)"),
    "eta": Option(0.05, lo=0.0, hi=1.0, help="Q's moving-average rate (eq. 12), per read of a column"),
    "in_chop_prob": CHOP_OPTIONS["in_chop_prob"].but(default=0.0, help=(
        "p of eq. 17: a column's chopper flips after a read with probability p")),
    "in_chop_random": CHOP_OPTIONS["in_chop_random"],
    "buffer": Option(True, help="practical form: the residual through a buffer H and threshold pulses; false: eq. 11b"),
    "track": Option(True, help="Q tracks P's symmetric point; false: Q stays fixed (P5 Alg. 4's second stage)"),
}


class RIDER(ArrayAlgorithm):
    """RIDER (P5 Alg. 2): residual P - Q with Q a digital moving average of P.  See module docstring."""

    name = "rider"
    OPTIONS = RIDER_OPTIONS
    # symmetric device: W must follow without a pulse cap; gamma 0.4 as the residual family's ideal setting
    ideal_options = {"gamma": 0.4, "max_pulses": 0}
    analog_copy = False  # E-RIDER: P is read against an analog copy Q~ of Q

    def make(self) -> None:
        if self.opts["n_columns"] > self.shape[1]:
            raise ConfigError(f"n_columns = {self.opts['n_columns']} is outside the allowed range [1, {self.shape[1]}]"
                              " (the layer's input size)")
        self.W = self.new_tile("W", 0)
        self.P = self.new_tile("P", 1)
        for name in ("Q", "H", "R0", "Q_copy"):
            self.new_buffer(name)
        self.buffers["chop"] = torch.ones(self.shape[1], dtype=torch.float64, device=self.device)
        self.buffers["reads"] = torch.zeros(self.shape[1], dtype=torch.float64, device=self.device)
        self.counters.update(steps=0, pointer=0, flips=0, reprograms=0)
        self.calibration_pulses = 0
        if self.opts["calibration"] == "zero-shift":  # Alg. 4 stage 1: the estimate becomes P's reference
            self.calibration_pulses = calibrate(self.P, self.opts["calibration_pulses"], self.opts["calibration_mode"])
        # P's own reference (zero, sampled with an offset, or calibrated): Q tracks P read against it, and
        # E-RIDER's analog copy Q~ is programmed on top of it
        self.buffers["R0"].copy_(self.P.reference.double())

    def mix(self):
        gc = self.opts["gamma"] * self.buffers["chop"]  # per input column
        if self.analog_copy:
            return [(1.0, self.W), (gc, self.P)]  # P reads P - Q~
        return [(1.0, self.W), (gc, self.P), (-gc, self.buffers["Q"])]

    def program(self, w: torch.Tensor) -> None:
        """W <- w; P <- Q (the residual reads zero); H <- 0; choppers +1.  Q keeps its value."""
        self.W.program(w)
        self.buffers["chop"].fill_(1.0)
        self.buffers["reads"].zero_()
        if self.analog_copy:
            self.program_copy(torch.arange(self.shape[1], device=self.device))
            self.P.program(torch.zeros(self.shape))
        else:
            self.P.program(self.buffers["Q"])
        self.buffers["H"].zero_()

    def program_copy(self, cols: torch.Tensor) -> None:
        """E-RIDER's Q~ <- Q on ``cols``: P's reference becomes its own reference R0 plus the copy."""
        self.buffers["Q_copy"][:, cols] = self.buffers["Q"][:, cols]
        program_reference(self.P, self.buffers["R0"] + self.buffers["Q_copy"])

    def update(self, grad: Gradient, lr: float) -> None:
        alpha, beta = self.scaled_lr("fast_lr", lr), self.scaled_lr("transfer_lr", lr)
        if self.opts["buffer"]:
            beta = buffer_rate(self.opts, beta, self.shape[1])
        pulse_gradient(self.P, grad.scaled_inputs(self.buffers["chop"]), alpha)  # 11a / 18a: c_k grad
        self.counters["steps"] += 1
        if self.counters["steps"] % self.opts["transfer_every"] == 0:
            cols, self.counters["pointer"] = next_columns(self.counters["pointer"], self.opts["n_columns"],
                                                          self.shape[1])
            self.transfer(cols, beta)
            self.chop(cols)

    def transfer(self, cols: torch.Tensor, beta: float) -> None:
        a = read_columns(self.P, cols).double()  # P_{k+1} - Q~_k (E-RIDER) or P_{k+1} (RIDER)
        p_next = a + self.buffers["Q_copy"][:, cols]  # P_{k+1} (the copy is known digitally; 0 for RIDER)
        q = self.buffers["Q"][:, cols]
        v = self.buffers["chop"][cols] * (a if self.analog_copy else p_next - q)  # c (P_{k+1} - Q~_k)
        if self.opts["track"]:
            self.buffers["Q"][:, cols] = decay_filter(q, p_next, self.opts["eta"])  # eq. 12
        if not self.opts["buffer"]:
            transfer_columns(self.W, cols, v, beta)  # eq. 11b / 18b
            return
        buffer_pulses(self.W, self.buffers["H"], cols, v, beta, self.opts["threshold_scale"] * self.W.device.dw_min,
                      self.opts["max_pulses"], self.opts["forget_buffer"], self.opts["momentum"])  # TT-v2's step

    def chop(self, cols: torch.Tensor) -> None:
        """Eq. 17 for the choppers of the read columns; E-RIDER reprograms Q~ <- Q where one flipped (Alg. 3
        steps 4-5)."""
        flips = advance_choppers(self.buffers["chop"], self.buffers["reads"], cols, self.opts["in_chop_prob"],
                                 self.opts["in_chop_random"], self.generator)
        if not bool(flips.any()):
            return
        flipped = cols[flips]
        self.counters["flips"] += int(flipped.numel())
        if self.analog_copy:
            self.program_copy(flipped)
            self.counters["reprograms"] += 1


class ERIDER(RIDER):
    """E-RIDER (P5 Alg. 3): RIDER with choppers and an analog copy Q~ reprogrammed at flips."""

    name = "erider"
    OPTIONS = {**RIDER_OPTIONS, "in_chop_prob": RIDER_OPTIONS["in_chop_prob"].but(default=0.05, lo_open=True, why=(
        "E-RIDER refreshes its copy of Q only at chopper flips, so at p = 0 it would never track: for RIDER "
        "use algorithm rider; for residual learning against a fixed Q, rider with track = false"))}
    ideal_options = {"gamma": 0.4, "eta": 0.2, "max_pulses": 0}
    analog_copy = True
