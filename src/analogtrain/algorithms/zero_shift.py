"""Zero-shifting: estimate each element's symmetric point by ±1 pulses (Kim et al. 2019; P5 Alg. 1, eq. 7).

P5 eq. 7 (papers.md §2.7, §7(b)): every element receives one pulse per round,

    W_{n+1} = W_n + eps_n * F(W_n) - |eps_n| * G(W_n),      eps_n in {+dw_min, -dw_min},

with random signs (P5 Alg. 1) or alternating +, - (the original, "cyclic" variant, P5 Thm C.3).  An
up-and-down pair moves w by about ``-2 dw_min G(w)`` (L1 eq. 7), so the state drifts to the point where
``G = 0`` and then jitters around it within a few dw_min (P5 Thm 2.2: floor Theta(dw_min); it takes
O(1 / (delta dw_min)) pulses to get within delta).  The final state ``W_N`` is the estimate.

``program_reference`` (from ``steps``) then makes the array read ``conductance - estimate``, so a
residual array reads zero at its symmetric point (P2 Assumption 4 / Cor. 1: G_P(0) = 0).
"""

from __future__ import annotations

import torch

from ..errors import check_choice, check_range
from ..tile import AnalogTile
from .steps import Option, program_reference

MODES = ("random", "cyclic")

# the options of every algorithm with an analog gradient array (``calibrate`` runs at build time)
CALIBRATION_OPTIONS = {
    "calibration": Option("none", choices=("none", "zero-shift"), help=(
        "zero-shift the gradient array before training (P5 Alg. 1), so it reads zero at its symmetric point")),
    "calibration_pulses": Option(1000, lo=0, help="zero-shifting pulses per element (counted in the run's pulses)"),
    "calibration_mode": Option("random", choices=MODES, help="random signs (P5 Alg. 1) or +, -, +, - (cyclic)"),
}

__all__ = ["CALIBRATION_OPTIONS", "MODES", "calibrate", "program_reference", "zero_shift"]


def zero_shift(tile: AnalogTile, n_pulses: int, mode: str = "random",
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """Send ``n_pulses`` single ±1 pulses to every element of ``tile`` (P5 Alg. 1).

    ``mode="random"``: each element's sign is drawn independently per round from ``generator``
    (default: the tile's own); ``"cyclic"``: +, -, +, - ... for all elements.  The pulses go through
    ``pulses.apply_pulses`` (the device response with cycle noise) and are counted in
    ``tile.pulse_count``.  Returns ``(estimate, pulses_sent)``: the final conductances (the symmetric
    point estimate, in conductance units) and ``n_pulses * tile elements``.
    """
    n_pulses = int(check_range("n_pulses", n_pulses, 0))
    check_choice("mode", mode, MODES)
    gen = tile.generator if generator is None else generator
    ones = torch.ones(tile.shape, dtype=torch.float64, device=tile.conductance.device)
    sent = 0
    for k in range(n_pulses):
        if mode == "random":
            sign = torch.randint(0, 2, tile.shape, generator=gen, device=ones.device).double() * 2 - 1
        else:
            sign = ones if k % 2 == 0 else -ones
        sent += tile.send_pulses(sign)
    return tile.conductance.clone(), sent


def calibrate(tile: AnalogTile, n_pulses: int, mode: str = "random") -> int:
    """Zero-shift ``tile`` and program the estimate as its reference; returns the pulses spent."""
    estimate, sent = zero_shift(tile, n_pulses, mode)
    program_reference(tile, estimate)
    return sent
