"""The least-squares toy of P1 App. I.1 (papers.md §3(d)): a linear regression trained on one 1×D tile.

Problem.  ``A ∈ R^{m×D}`` with i.i.d. N(0, σ_A²) entries, ``W* ∈ R^D`` with i.i.d. N(0, σ_W*²) entries
(plus an optional constant ``w_offset``), ``b = A W*`` (so the optimum is W* and f* = 0), and

    f(W) = (c/2) ‖A W − b‖²,        ∇f(W) = c Aᵀ(A W − b).

``c = 1`` is the paper's ``f = ½‖AW − b‖²``.  The authors' scripts train with torch's mean-squared
error, i.e. ``c = 2/m`` when the objective is ``MSE`` (Fig. 1, Fig. 4 middle/right) and ``c = 1/m`` when
it is ``MSE/2`` (Fig. 3); the experiments pass that ``c`` so that the published step sizes α mean the
same thing here (with ``c = 1`` and m = 100, α = 0.2 would diverge).

Recorded loss.  Every run records ``f(W_k) / D`` at W_0, …, W_K (K + 1 numbers; this is ``f − f*``
over D because f* = 0).  With ``c = 2/m`` it is exactly the authors' recorded ``MSE / D``; with other
``c`` it is the objective divided by D.  The asymptotic error is the mean of the last 20 recorded
losses, as in the authors' code (``floor``).

Gradient noise.  The stochastic gradient is ``∇f(W_k) + ε_k`` with ε_k i.i.d. N(0, s² I): ``s`` is
the std of each coordinate (the authors' ``noise_std``), so E‖ε‖² = D s² is P1's σ².

Methods (``Method``):
* ``digital``  — digital SGD ``W ← W − α g`` (P1 eq. 5): ``DigitalSGD`` on an ideal, unbounded tile;
* ``analog``, mode ``expected`` — Analog SGD with the analog-update model ``W ← W + ΔW⊙F(W) − |ΔW|⊙G(W)``
  (P1 eq. 7; for the ALD this is P1 eq. 3, the authors' "analog dynamic");
* ``analog``, mode ``pulses`` — Analog SGD simulated pulse by pulse: each element receives
  ``round(|αg| / Δw_min)`` single pulses of sign −sign(g) (stochastic rounding, as the authors' runs
  had ``sto_round``), capped at ``max_pulses`` (the max BL);
* ``algorithm`` — any registered algorithm (``algorithms.ALGORITHMS``, e.g. Tiki-Taka) on a 1×D layer,
  with its options, its arrays on ``device`` (or per array ``devices``) and the same update modes;
* ``analog``, mode ``stochastic`` — Analog SGD as the authors' simulator (AIHWKIT) runs it: the step
  ``−α Σ_i d_i a_i`` is written sample by sample (i = 1..m, rows a_i of A, d_i = c (a_i·W − b_i + e_i)) as
  rank-one stochastic pulse trains with coincidence counting (papers.md §1.5).  The noise is then
  per sample, e_i ~ N(0, s_e²) with ``s_e = s √D / (c ‖A‖_F)`` so that the batch gradient noise
  ``c Aᵀe`` has the same E‖·‖² = D s² as the injected noise of the other methods.  The pulses a
  step sends scale with Σ_i |d_i a_i| rather than with |Σ_i d_i a_i|, so the asymmetric drift is
  larger than in the batch model (this is what makes P1 Fig. 1's floor large; see p1.py).

Randomness.  Everything comes from explicit ``torch.Generator``s derived from one integer ``seed``:
the problem data (``sub_seed(seed, "problem")``), the gradient noise (``sub_seed(seed, "noise")``) and
the tile (``sub_seed(seed, "tile")``).  The noise sequence does not depend on the method, so digital
and analog runs with the same seed see the same ε_k (common random numbers: differences between
methods are not sampling noise).  Same seed ⇒ identical numbers.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..algorithms import make_algorithm
from ..algorithms.sgd import AnalogSGD, DigitalSGD
from ..devices.base import Device
from ..devices.constant_step import Ideal
from ..errors import ConfigError, check_choice, check_range
from ..tile import AnalogTile, TileConfig

DTYPE = torch.float64
LAST_N = 20  # the authors' asymptotic error: mean of the last 20 recorded losses


def sub_seed(seed: int, *tags) -> int:
    """A 63-bit seed derived from ``seed`` and string/int tags (stable across processes and platforms)."""
    text = repr((int(seed),) + tuple(tags)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def generator(seed: int, *tags) -> torch.Generator:
    return torch.Generator().manual_seed(sub_seed(seed, *tags))


# =============================================================================================
# the problem
# =============================================================================================
@dataclass(frozen=True)
class LeastSquares:
    """``f(W) = (c/2)‖AW − b‖²`` with ``b = A W*`` (module docstring); W is a (R, D) stack of rows."""

    A: torch.Tensor  # (m, D)
    w_star: torch.Tensor  # (D,)
    b: torch.Tensor  # (m,)
    scale: float = 1.0  # c

    @classmethod
    def random(
        cls,
        dim: int,
        m: int = 100,
        sigma_a: float = 1.0,
        sigma_w: float = 1.0,
        w_offset: float = 0.0,
        scale: float = 1.0,
        seed: int = 0,
    ) -> "LeastSquares":
        """Draw W* ~ w_offset + σ_W* N(0, I_D) and then A ~ σ_A N(0, 1)^{m×D} from ``sub_seed(seed, "problem")``."""
        check_range("dim", dim, 1)
        check_range("m", m, 1)
        check_range("sigma_a", sigma_a, 0.0, lo_open=True)
        check_range("sigma_w", sigma_w, 0.0)
        check_range("scale", scale, 0.0, lo_open=True)
        g = generator(seed, "problem")
        w_star = w_offset + sigma_w * torch.randn(dim, generator=g, dtype=DTYPE)
        A = sigma_a * torch.randn(m, dim, generator=g, dtype=DTYPE)
        return cls(A=A, w_star=w_star, b=A @ w_star, scale=float(scale))

    @property
    def dim(self) -> int:
        return self.A.shape[1]

    def residual(self, W: torch.Tensor) -> torch.Tensor:
        """``A W − b`` per row: (R, m)."""
        return W.to(DTYPE) @ self.A.T - self.b

    def value(self, W: torch.Tensor) -> torch.Tensor:
        """f(W) per row: (R,)."""
        return 0.5 * self.scale * self.residual(W).square().sum(dim=-1)

    def loss(self, W: torch.Tensor) -> torch.Tensor:
        """The recorded loss f(W)/D per row (= (f − f*)/D; the authors' MSE/D when c = 2/m)."""
        return self.value(W) / self.dim

    def grad(self, W: torch.Tensor) -> torch.Tensor:
        """∇f(W) = c Aᵀ(AW − b) per row: (R, D)."""
        return self.scale * (self.residual(W) @ self.A)

    @property
    def hessian_eigenvalues(self) -> torch.Tensor:
        """Eigenvalues of c AᵀA (ascending): the smoothness L is the last, the strong convexity μ the first."""
        return torch.linalg.eigvalsh(self.scale * self.A.T @ self.A)

    def describe(self) -> dict:
        ev = self.hessian_eigenvalues
        return {
            "m": self.A.shape[0], "D": self.dim, "c": self.scale, "L": float(ev[-1]), "mu": float(ev[0]),
            "max_abs_w_star": float(self.w_star.abs().max()), "f_at_zero_over_D": float(self.loss(
                torch.zeros(1, self.dim, dtype=DTYPE))[0]),
        }


# =============================================================================================
# methods and runs
# =============================================================================================
KINDS = ("digital", "analog", "algorithm")


@dataclass(frozen=True)
class Method:
    """Which optimiser runs: digital SGD, or Analog SGD on ``device`` with the tile update ``mode``.

    ``update`` holds extra ``UpdateConfig`` fields for the tile (e.g. ``max_pulses``, ``rounding``).
    Kind ``algorithm`` runs the registered algorithm ``algorithm`` with ``options``; ``devices`` and
    ``updates`` map an array name (e.g. ``"P"``) to a device other than ``device`` and to
    ``UpdateConfig`` fields other than ``update`` (Tiki-Taka's W only receives transfers, so its update
    fields are aihwkit's ``transfer_update``).
    """

    kind: str = "digital"
    device: Device | None = None
    mode: str = "expected"
    update: dict = field(default_factory=dict)
    label: str = ""
    algorithm: str = ""
    options: dict = field(default_factory=dict)
    devices: dict = field(default_factory=dict)
    updates: dict = field(default_factory=dict)

    def __post_init__(self):
        check_choice("kind", self.kind, KINDS)
        if self.kind != "digital" and self.device is None:
            raise ConfigError(f"an {self.kind} method needs a device")

    @classmethod
    def digital(cls, label: str = "digital SGD") -> "Method":
        return cls(kind="digital", label=label)

    @classmethod
    def analog(cls, device: Device, label: str = "Analog SGD (model)") -> "Method":
        """Analog SGD with the analog-update model (P1 eq. 3/7): tile mode ``expected``."""
        return cls(kind="analog", device=device, mode="expected", label=label)

    @classmethod
    def pulsed(
        cls, device: Device, max_pulses: int = 0, rounding: str = "stochastic", label: str = "Analog SGD (pulses)"
    ) -> "Method":
        """Analog SGD as rounded single pulses (tile mode ``pulses``), at most ``max_pulses`` per step."""
        return cls(kind="analog", device=device, mode="pulses",
                   update={"max_pulses": int(max_pulses), "rounding": rounding}, label=label)

    @classmethod
    def stochastic(cls, device: Device, bl: int = 62, label: str = "Analog SGD (pulse trains)") -> "Method":
        """Analog SGD by per-sample stochastic pulse trains (tile mode ``stochastic``, max length ``bl``,
        update and BL management on, as in the authors' AIHWKIT runs)."""
        return cls(kind="analog", device=device, mode="stochastic", update={"bl": int(bl)}, label=label)

    @classmethod
    def with_algorithm(cls, name: str, device: Device, options: dict | None = None, mode: str = "expected",
                       update: dict | None = None, devices: dict | None = None, updates: dict | None = None,
                       label: str = "") -> "Method":
        """The registered algorithm ``name`` (e.g. ``"tiki-taka"``) with ``options``, arrays on ``device``
        with tile update ``mode`` and extra ``update`` fields (per-array overrides: ``devices``, ``updates``)."""
        return cls(kind="algorithm", device=device, mode=mode, update=dict(update or {}), label=label or name,
                   algorithm=name, options=dict(options or {}), devices=dict(devices or {}),
                   updates=dict(updates or {}))

    def build(self, dim: int, seed: int):
        """A 1×dim float64 tile with exact reads, wrapped in the method's optimiser."""
        if self.kind == "algorithm":
            cfg = TileConfig.perfect(self.device, mode=self.mode, **self.update)
            configs = {k: TileConfig.perfect(self.devices.get(k, self.device), mode=self.mode,
                                             **{**self.update, **self.updates.get(k, {})})
                       for k in set(self.devices) | set(self.updates)}
            return make_algorithm(self.algorithm, 1, dim, cfg, sub_seed(seed, "tile"), dtype=DTYPE,
                                  configs=configs, **self.options)
        if self.kind == "digital":
            tile = AnalogTile(1, dim, TileConfig.perfect(Ideal()), seed=sub_seed(seed, "tile"), dtype=DTYPE)
            return DigitalSGD(tile)
        cfg = TileConfig.perfect(self.device, mode=self.mode, **self.update)
        return AnalogSGD(AnalogTile(1, dim, cfg, seed=sub_seed(seed, "tile"), dtype=DTYPE))


@dataclass
class Curve:
    """One run: recorded losses f(W_k)/D for k = 0..K (and ‖∇f(W_k)‖² if asked), final weight."""

    loss: np.ndarray
    weight: np.ndarray
    grad_norm2: np.ndarray | None = None

    def floor(self, last: int = LAST_N) -> float:
        return floor(self.loss, last)


def floor(loss, last: int = LAST_N) -> float:
    """Asymptotic error: the mean of the last ``last`` recorded losses (the authors' definition)."""
    arr = np.asarray(loss, dtype=float)
    return float(arr[-last:].mean())


def run(
    problem: LeastSquares,
    method: Method,
    lr: float,
    steps: int,
    *,
    noise_std: float = 0.0,
    seed: int = 0,
    w0=None,
    record_grad: bool = False,
) -> Curve:
    """Run ``steps`` steps of ``method`` on ``problem`` from ``w0`` (scalar or (D,); default 0).

    Step k: record f(W_k)/D, draw g_k = ∇f(W_k) + noise_std·N(0, I) (noise from
    ``sub_seed(seed, "noise")``, the same for every method), then ``step_gradient(g_k, lr)``.
    A ``stochastic``-mode method instead draws per-sample noise (module docstring) and calls
    ``step(A, d, lr)`` so the tile writes the step sample by sample.  The weight a step sees is the
    tile's read weight (W_0 is programmed, so an analog tile clips it to the device range).
    ``record_grad`` also records the noise-free ‖∇f(W_k)‖².
    """
    check_range("lr", lr, 0.0)
    check_range("steps", steps, 0)
    check_range("noise_std", noise_std, 0.0)
    dim = problem.dim
    opt = method.build(dim, seed)
    w0 = torch.zeros(dim, dtype=DTYPE) if w0 is None else torch.as_tensor(w0, dtype=DTYPE)
    opt.program(torch.broadcast_to(w0, (dim,)).reshape(1, dim))
    gen = generator(seed, "noise")
    losses = torch.empty(steps + 1, dtype=DTYPE)
    gnorm = torch.empty(steps + 1, dtype=DTYPE) if record_grad else None
    A, b, c = problem.A, problem.b, problem.scale
    inv_dim = 1.0 / dim
    per_sample = method.kind != "digital" and method.mode == "stochastic"
    s_e = noise_std * math.sqrt(dim) / (c * float(A.norm())) if per_sample else 0.0
    for k in range(steps + 1):
        w = opt.weight  # (1, D)
        r = w @ A.T - b  # (1, m)
        losses[k] = 0.5 * c * inv_dim * r.square().sum()
        if record_grad or not per_sample:
            g = c * (r @ A)
            if record_grad:
                gnorm[k] = g.square().sum()
        if k == steps:
            break
        if per_sample:
            if s_e > 0:
                r = r + s_e * torch.randn(r.shape, generator=gen, dtype=DTYPE)
            opt.step(A, c * r.T, lr)  # W -= lr Σ_i d_i a_i, sample by sample
            continue
        if noise_std > 0:
            g = g + noise_std * torch.randn(g.shape, generator=gen, dtype=DTYPE)
        opt.step_gradient(g, lr)
    return Curve(
        loss=losses.numpy(), weight=opt.weight[0].clone().numpy(),
        grad_norm2=None if gnorm is None else gnorm.numpy(),
    )


def ald_fixed_point(problem: LeastSquares, tau: float, kappa) -> torch.Tensor:
    """Where the mean drift of Analog SGD on an ALD (P1 eq. 3, symmetric point 0) vanishes.

    Per coordinate the expected step is ``−α ∇f(w)_i − (α/τ) E|g_i| w_i``; with ``E|g_i| ≈ κ_i`` (for
    noise-dominated gradients κ = s √(2/π)) the drift is zero at ``(H + diag(κ)/τ) w̄ = H W*``, H = c AᵀA
    (the implicit penalty of papers.md §9.1 item 9).  ``problem.loss(w̄)`` is then the bias part of the
    asymptotic error, the non-vanishing term of P1 Thm 2-3 (≈ 4σ²S_K in gradient-norm units).
    """
    H = problem.scale * problem.A.T @ problem.A
    k = torch.as_tensor(kappa, dtype=DTYPE).expand(problem.dim) / float(tau)
    return torch.linalg.solve(H + torch.diag(k), H @ problem.w_star)
