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
(c_0 = 1, flipped after a step with probability ``chop_prob`` (eq. 17), or every
max(ceil(1/p), 2) steps with ``chop_random = false``) and an analog copy Q~ of Q that P is read
against (here: P's reference array, ``program_reference``), reprogrammed from the digital Q only
when the chopper flips:

    W_bar_k = W_k + gamma c_k (P_k - Q~_k);   P_{k+1} = P_k - alpha c_k grad * F_p - alpha |grad| * G_p
    Q_{k+1} = (1 - eta) Q_k + eta P_{k+1};    W_{k+1} = W_k + beta c_k (P_{k+1} - Q~_k) (pulsed)

The chopper flips the gradient's sign in P but not the drift, so the drift is the low-frequency part Q
keeps.  RIDER is E-RIDER with p = 0 and Q~ = Q (Alg. 2 subtracts the digital Q_k itself; here it is
applied digitally in the mixed read and the transfer).

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

Two-stage baseline (P5 Alg. 4) = ``rider`` with ``calibration = "zero-shift"`` (``calibration_pulses`` N
random/cyclic pulses per element of P before training; the estimate becomes Q_0, and Q~_0 = Q_0) and
``track = false`` (Q stays at the estimate): residual learning against a calibrated, static SP
estimate.  (Not registered under its own name: the registry's shared tests would zero-shift every
layer of their model.)

Letters: alpha = fast lr, beta = transfer lr (``scaled_lr`` rules of ``tiki_taka.py``), gamma the
mixing weight (P5 uses 0.1), eta the moving-average rate.  Q's rate is per read of a column.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .steps import (ArrayAlgorithm, Gradient, Option, accumulate, chopper_flips, decay_filter, fire_pulses,
                    next_columns, program_reference, pulse_gradient, read_columns, threshold_pulses,
                    transfer_columns)
from .ttv2 import BUFFER_OPTIONS
from .zero_shift import zero_shift

RIDER_OPTIONS = {
    **BUFFER_OPTIONS,
    "gamma": Option(0.1, lo=0.0),  # P5: 0.1
    "eta": Option(0.05, lo=0.0, hi=1.0),  # moving-average rate of Q (eq. 12)
    "chop_prob": Option(0.0, lo=0.0, hi=1.0),  # p of eq. 17
    "chop_random": Option(True),
    "buffer": Option(True),  # practical form (H + threshold pulses); False: eq. 11b as a pulsed transfer
    "track": Option(True),  # False: Q stays at its initial value (Alg. 4)
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
        self.new_buffer("Q")
        self.new_buffer("H")
        self.counters.update(steps=0, pointer=0, chop=1, flips=0, reprograms=0)
        self.calibration_pulses = 0
        if self.opts["calibration"] == "zero-shift":  # Alg. 4 stage 1: Q_0 = the zero-shifting estimate
            est, self.calibration_pulses = zero_shift(self.P, self.opts["calibration_pulses"],
                                                      self.opts["calibration_mode"])
            self.buffers["Q"].copy_(est.double())

    def mix(self):
        gc = self.opts["gamma"] * self.counters["chop"]
        if self.analog_copy:
            return [(1.0, self.W), (gc, self.P)]  # P reads P - Q~
        return [(1.0, self.W), (gc, self.P), (-gc, self.buffers["Q"])]

    def program(self, w: torch.Tensor) -> None:
        """W <- w; P <- Q (the residual reads zero); H <- 0; chopper +1.  Q keeps its value."""
        self.W.program(w)
        q = self.buffers["Q"]
        if self.analog_copy:
            program_reference(self.P, q)
            self.P.program(torch.zeros(self.shape))
        else:
            self.P.program(q)
        self.buffers["H"].zero_()
        self.counters["chop"] = 1

    def update(self, grad: Gradient, lr: float) -> None:
        alpha, beta = self.scaled_lr("fast_lr", lr), self.scaled_lr("transfer_lr", lr)
        c = self.counters["chop"]
        pulse_gradient(self.P, grad.scaled(c), alpha)  # 11a / 18a
        self.counters["steps"] += 1
        if self.counters["steps"] % self.opts["transfer_every"] == 0:
            cols, self.counters["pointer"] = next_columns(self.counters["pointer"], self.opts["n_columns"],
                                                          self.shape[1])
            self.transfer(cols, beta, c)
        self.chop()

    def transfer(self, cols: torch.Tensor, beta: float, c: int) -> None:
        a = read_columns(self.P, cols).double()  # P_{k+1} - reference (Q~ for E-RIDER, 0 for RIDER)
        p_next = a + self.P.reference[:, cols].double()  # P_{k+1} (the reference is known digitally)
        q = self.buffers["Q"][:, cols]
        v = c * (a if self.analog_copy else p_next - q)  # c (P_{k+1} - Q~_k)  or  P_{k+1} - Q_k
        if self.opts["track"]:
            self.buffers["Q"][:, cols] = decay_filter(q, p_next, self.opts["eta"])  # eq. 12
        if not self.opts["buffer"]:
            transfer_columns(self.W, cols, v, beta)  # eq. 11b / 18b
            return
        h = accumulate(self.buffers["H"][:, cols], v, beta)
        n, h = threshold_pulses(h, self.opts["threshold_scale"] * self.W.device.dw_min, self.opts["max_pulses"],
                                self.opts["forget_buffer"], self.opts["momentum"])
        self.buffers["H"][:, cols] = h
        fire_pulses(self.W, n, cols)

    def chop(self) -> None:
        """Eq. 17: c_{k+1} = -c_k w.p. p; E-RIDER reprograms Q~ <- Q on a flip (Alg. 3 steps 4-5)."""
        steps_done = torch.tensor([float(self.counters["steps"])], dtype=torch.float64)
        if not bool(chopper_flips(steps_done, self.opts["chop_prob"], self.opts["chop_random"], self.generator)[0]):
            return
        self.counters["chop"] = -self.counters["chop"]
        self.counters["flips"] += 1
        if self.analog_copy:
            program_reference(self.P, self.buffers["Q"])
            self.counters["reprograms"] += 1


class ERIDER(RIDER):
    """E-RIDER (P5 Alg. 3): RIDER with a chopper and an analog copy Q~ reprogrammed at flips."""

    name = "erider"
    OPTIONS = {**RIDER_OPTIONS, "chop_prob": Option(0.05, lo=0.0, hi=1.0)}
    ideal_options = {"gamma": 0.4, "eta": 0.2, "max_pulses": 0}
    analog_copy = True
