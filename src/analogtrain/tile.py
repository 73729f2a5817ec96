"""One crossbar: conductances, their sampled device, the periphery and the tile's own generator.

The weight a read sees is ``conductance + write_noise - reference``: the conductance is what pulses
move (pulses.py, with the device's response), ``reference`` is a second, fixed array subtracted in a
differential read (aihwkit's reference device; P5's ``r``), and ``write_noise`` is redrawn for every
element that received a pulse (``Device.write_noise_std``, in units of dw_min).

Randomness: all of it (device-to-device sampling at construction, read noise, pulse trains, cycle
noise) comes from ``self.generator``, seeded at construction; ``state_dict`` holds the generator
state with every array, so a restored tile continues bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
import torch

from . import pulses
from .devices.base import Device, DeviceParams
from .devices.soft_bounds import SoftBounds
from .errors import ConfigError, check_finite, check_range, check_shape
from .io import IOConfig, _quantise, mvm
from .pulses import UpdateConfig


MAX_REFERENCE = 1e3


@dataclass(frozen=True)
class ReferenceConfig:
    """The reference array a differential read subtracts, sampled per element at construction.

    ``r = (symmetric point of the element, if symmetric_point) + mean + std * xi``, ``xi ~ N(0, 1)``:
    P5's model of a calibrated reference with an offset (papers.md §7(d): ``r = w_sp + mu_r + sigma_r xi``)
    and L1's reference error (§8); aihwkit's reference devices with ``subtract_symmetry_point`` and
    ``reference_mean`` / ``reference_std`` are this with ``symmetric_point = true``.  The default is no
    reference (r = 0).  In units of the device's weight, like its bounds.
    """

    symmetric_point: bool = False
    mean: float = 0.0
    std: float = 0.0

    def __post_init__(self):
        if not isinstance(self.symmetric_point, bool):
            raise ConfigError(f"reference.symmetric_point must be true or false, got {self.symmetric_point!r}")
        # in weight units, like a device's bounds (order 1): beyond a thousand the reads are meaningless
        check_range("reference.mean", self.mean, -MAX_REFERENCE, MAX_REFERENCE)
        check_range("reference.std", self.std, 0.0, MAX_REFERENCE)

    def sample(self, shape, device: Device, params: DeviceParams, generator: torch.Generator) -> torch.Tensor:
        """The reference of one ``shape`` array (float64; draws from ``generator`` only when std > 0)."""
        r = torch.zeros(shape, dtype=torch.float64, device=generator.device)
        if self.symmetric_point:
            r = r + device.symmetric_point(params).double().to(r.device)
        if self.std > 0:
            r = r + self.std * torch.randn(shape, generator=generator, dtype=torch.float64, device=r.device)
        return r + self.mean


@dataclass(frozen=True)
class TileConfig:
    """Everything that defines a tile except its size and seed."""

    device: Device = field(default_factory=SoftBounds)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    forward: IOConfig = field(default_factory=IOConfig)
    backward: IOConfig = field(default_factory=IOConfig)
    # transfer reads (one-hot columns): no noise or bound management, same converters (P5 Table 6)
    read: IOConfig = field(
        default_factory=lambda: IOConfig(noise_management="none", bound_management="none")
    )

    @classmethod
    def perfect(cls, device: Device, mode: str = "expected", **update) -> "TileConfig":
        """Exact reads in every direction (``IOConfig.perfect``) and the given update mode."""
        io = IOConfig.perfect()
        return cls(device=device, update=UpdateConfig(mode=mode, **update), forward=io, backward=io, read=io)


@numba.njit(cache=True)
def _read_columns(w, write_noise, reference, with_write_noise, with_reference, cols, noise, consts, flags, out):
    """``AnalogTile._read_gather`` on CPU arrays, element by element: ``out[t, r]`` is the read of
    ``W[r, cols[t]]``.  ``consts`` = (DAC code u, out_noise, out_step, out_bound, 0) in ``w``'s dtype,
    ``flags`` = (u != 1, out_noise > 0, out_step != 0, out_bound finite); ``noise`` the (k, out) normals."""
    u, out_noise, step, bound, zero = consts[0], consts[1], consts[2], consts[3], consts[4]
    for t in range(cols.shape[0]):
        c = cols[t]
        for r in range(w.shape[0]):
            x = w[r, c]
            if with_write_noise:
                x = x + write_noise[r, c]
            if with_reference:
                x = x - reference[r, c]
            if flags[0]:
                x = x * u
            x = x + zero  # -0.0 -> +0.0, as the MVM's sum
            if flags[1]:
                x = x + out_noise * noise[t, r]
            if flags[2]:
                x = np.rint(x / step) * step  # io._quantise: to nearest, ties to even
            if flags[3]:
                x = min(max(x, -bound), bound)
            out[t, r] = x


class AnalogTile:
    """A crossbar of ``out_size x in_size`` resistive elements (ARCHITECTURE.md, layer "tile")."""

    def __init__(
        self,
        out_size: int,
        in_size: int,
        config: TileConfig | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        check_range("out_size", out_size, 1)
        check_range("in_size", in_size, 1)
        self.config = config or TileConfig()
        self.shape = (int(out_size), int(in_size))
        self.generator = torch.Generator(device).manual_seed(int(seed))
        self.params: DeviceParams = self.config.device.sample(self.shape, self.generator, device=device)
        self.conductance = torch.zeros(self.shape, dtype=dtype, device=device)
        ref = self.config.reference
        if ref == ReferenceConfig():
            self.reference = torch.zeros(self.shape, dtype=dtype, device=device)
        else:
            self.reference = ref.sample(self.shape, self.config.device, self.params, self.generator).to(device, dtype)
        self.write_noise = torch.zeros(self.shape, dtype=dtype, device=device)
        self._write_noise_zero = True
        self.pulse_count = 0  # total single pulses applied to the conductances
        self.conductance = self._clip(self.conductance)

    # ---- reads ------------------------------------------------------------------------------
    @property
    def device(self) -> Device:
        return self.config.device

    @property
    def reference(self) -> torch.Tensor:
        """The fixed array subtracted in a differential read (assign a new tensor to change it)."""
        return self._reference

    @reference.setter
    def reference(self, value: torch.Tensor) -> None:
        self._reference = value
        self._reference_zero = not bool(value.any())

    @property
    def weight(self) -> torch.Tensor:
        """The weight a read sees: conductance + write noise - reference (read-only: with no write
        noise and no reference this is the conductance tensor itself, not a copy)."""
        w = self.conductance
        if not self._write_noise_zero:
            w = w + self.write_noise
        if not self._reference_zero:
            w = w - self.reference
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = W x through the forward periphery; x of shape (B, in) or (in,)."""
        squeeze = x.dim() == 1
        x = x.unsqueeze(0) if squeeze else x
        y = mvm(self.weight, x.to(self.conductance.dtype), self.config.forward, self.generator)  # mvm validates x
        return y.squeeze(0) if squeeze else y

    def backward(self, d: torch.Tensor) -> torch.Tensor:
        """z = W^T d through the backward periphery; d of shape (B, out) or (out,)."""
        squeeze = d.dim() == 1
        d = d.unsqueeze(0) if squeeze else d
        z = mvm(self.weight, d.to(self.conductance.dtype), self.config.backward, self.generator, transpose=True,
                name="d")
        return z.squeeze(0) if squeeze else z

    def read(self, columns) -> torch.Tensor:
        """Columns of W read by one-hot forward passes through the ``read`` periphery: (out, k)."""
        cols = torch.as_tensor(columns, dtype=torch.long, device=self.conductance.device).reshape(-1)
        # (a transfer reads one or a few columns: checking them in Python is cheaper than two reductions)
        if cols.numel() <= 16:
            bad = any(c < 0 or c >= self.shape[1] for c in cols.tolist())
        else:
            bad = bool(cols.min() < 0 or cols.max() >= self.shape[1])
        if bad:
            raise ConfigError(f"columns must lie in [0, {self.shape[1] - 1}], got {cols.tolist()}")
        cfg = self.config.read
        # The gather shortcut holds for a periphery that keeps a one-hot input one-hot (no input noise)
        # and reads each column once (no iterative bound management, whose re-runs depend on the output).
        if cols.numel() and cfg.inp_noise == 0 and not (
            cfg.bound_management == "iterative" and cfg.out_bound != float("inf")
        ):
            return self._read_gather(cols)
        return self._read_onehot(cols)

    def _read_onehot(self, cols: torch.Tensor) -> torch.Tensor:
        """Reference read: one-hot inputs through ``io.mvm`` (any periphery)."""
        onehot = torch.zeros(cols.numel(), self.shape[1], dtype=self.conductance.dtype, device=cols.device)
        onehot[torch.arange(cols.numel()), cols] = 1
        return mvm(self.weight, onehot, self.config.read, self.generator).T

    def _read_gather(self, cols: torch.Tensor) -> torch.Tensor:
        """``_read_onehot`` bit for bit (same arithmetic, same noise draws) without the full-size work.

        A one-hot row normalises to itself (its abs-max is 1), the DAC turns its 1 into some code ``u``
        and the MVM sums ``u * W[j, col]`` with exact zeros, which is exactly ``u * W[j, col]`` (``+ 0.0``
        gives the +0.0 the matmul's zero-started sum gives for a -0.0 entry).  So only the read columns
        of the weight (``conductance + write_noise - reference``, elementwise as ``weight``) are formed,
        then the ADC steps of ``io._analog_pass`` run on the (k, out) outputs (on CPU fused in the numba
        loop ``_read_columns``).  Tests hold it equal to ``_read_onehot``.
        """
        cfg = self.config.read
        # The DAC code of the one-hot's 1, as _analog_pass computes it (cached per periphery and dtype).
        # With a perfect periphery every step below is the identity, matching mvm's bare matmul.
        dtype = self.conductance.dtype
        code = self.__dict__.get("_read_code")
        if code is None or code[0] is not cfg or code[1] != dtype:
            u = _quantise(torch.ones(1, dtype=dtype, device=self.conductance.device), cfg.inp_step)
            u = u.clamp(-cfg.inp_bound, cfg.inp_bound)
            # for the CPU kernel: u and the ADC's constants in the array's dtype (torch turns a python
            # float into the tensor's dtype before the operation, so the kernel does too)
            consts = torch.tensor([float(u), cfg.out_noise, cfg.out_step, cfg.out_bound, 0.0], dtype=dtype).numpy()
            flags = np.array([bool(u != 1), cfg.out_noise > 0, cfg.out_step != 0, cfg.out_bound != float("inf")])
            code = (cfg, dtype, u, bool(u == 1), consts, flags)
            self.__dict__["_read_code"] = code
        if cols.device.type == "cpu":
            # One numba loop over the (few) columns' elements with the same IEEE operations in the array's
            # dtype: torch's per-call cost of ~10 tiny operations would dominate a one-column read.  The
            # noise is drawn by torch from the tile's generator, as below.
            k, n_out = cols.numel(), self.shape[0]
            noise = torch.randn((k, n_out), generator=self.generator, dtype=dtype) if cfg.out_noise > 0 else None
            w = self.conductance.numpy()
            out = np.empty((k, n_out), dtype=w.dtype)
            _read_columns(w, w if self._write_noise_zero else self.write_noise.numpy(),
                          w if self._reference_zero else self.reference.numpy(), not self._write_noise_zero,
                          not self._reference_zero, cols.numpy(), w[:0] if noise is None else noise.numpy(),
                          code[4], code[5], out)
            return torch.from_numpy(out).T
        w = self.conductance[:, cols]
        if not self._write_noise_zero:
            w = w + self.write_noise[:, cols]
        if not self._reference_zero:
            w = w - self.reference[:, cols]
        y = (w.T if code[3] else w.T * code[2]) + 0.0  # (k, out), as the MVM's output (w * 1 is w)
        if cfg.out_noise > 0:
            y = y + cfg.out_noise * torch.randn(y.shape, generator=self.generator, dtype=y.dtype, device=y.device)
        y = _quantise(y, cfg.out_step)
        if cfg.out_bound != float("inf"):
            y = y.clamp(-cfg.out_bound, cfg.out_bound)
        return y.T

    def symmetric_point(self) -> torch.Tensor:
        """Per-element symmetric point of the sampled device (conductance units)."""
        return self.device.symmetric_point(self.params)

    # ---- writes -----------------------------------------------------------------------------
    def update(self, x: torch.Tensor, d: torch.Tensor, lr: float) -> None:
        """Apply the SGD step ``W -= lr * d^T x`` (summed over the batch) with the tile's update mode.

        ``stochastic`` mode realises it sample by sample with pulse trains; ``expected`` and
        ``pulses`` modes apply the batch's summed change at once.
        """
        x, _ = self._batch("x", x, self.shape[1])
        d, _ = self._batch("d", d, self.shape[0])
        if x.shape[0] != d.shape[0]:
            raise ConfigError(f"x and d must have the same batch size, got {x.shape[0]} and {d.shape[0]}")
        lr = check_range("lr", lr, 0.0)
        cfg = self.config.update
        if cfg.mode == "stochastic":
            x, d = x.to(self.conductance), d.to(self.conductance)
            w, touched, n = pulses.stochastic_update(
                self.device, self.params, self.conductance, x, d, lr, cfg, self.generator
            )
            self._written(w, touched, n)
        else:
            self._apply(torch.mm(d.T.to(self.conductance), x.to(self.conductance)).mul_(-lr))

    def apply(self, dw: torch.Tensor) -> None:
        """Apply a wanted change ``dW`` (out, in): ``expected`` mode uses the analog-update model,
        otherwise (``pulses`` and ``stochastic`` tiles) it is sent as rounded single pulses."""
        check_shape("dW", dw, self.shape)
        check_finite("dW", dw)
        self._apply(torch.as_tensor(dw))

    def _apply(self, dw: torch.Tensor) -> None:
        cfg = self.config.update
        if cfg.mode == "expected":
            w = pulses.expected_update(
                self.device, self.params, self.conductance, dw, self.generator, cfg.granularity_noise, cfg.fast
            )
            self._written(w, dw != 0, 0)
        else:
            n = pulses.pulse_counts(dw, self.device.dw_min, cfg.rounding, self.generator, cfg.max_pulses)
            self.send_pulses(n * torch.sign(dw))

    def send_pulses(self, counts: torch.Tensor) -> int:
        """Send ``|counts|`` single pulses of sign(counts) to each element; returns how many were sent.

        A pulse is a physical event, so this bypasses the update mode: each pulse moves an element by
        ``dw_min * q_sign(w)`` plus cycle noise (``pulses.apply_pulses``).  Used by transfers with
        thresholds, mixed precision and zero-shifting.

        On CPU the pulses go through ``_send_pulses_at`` over the elements with non-zero counts (its numba
        loop where the device has one: a zero-shifting round on the FCN's arrays takes 6.8 ms against 9.5 ms,
        ``bench_tile.py``); elsewhere through ``_send_pulses_reference``.  Both draw the same random numbers
        in the same order (tests hold them equal bit for bit).
        """
        if counts.device.type == "cpu" and self.conductance.device.type == "cpu":
            flat = counts.reshape(-1)
            idx = (flat.abs() > 0).nonzero().squeeze(1)  # as the reference: |counts| > 0
            return self._send_pulses_at(idx, flat[idx])
        return self._send_pulses_reference(counts)

    def _send_pulses_reference(self, counts: torch.Tensor) -> int:
        """``send_pulses`` in torch over the whole array (``pulses.apply_pulses``): the reference."""
        n = counts.double().abs()
        if not bool((n > 0).any()):
            return 0
        w = pulses.apply_pulses(self.device, self.params, self.conductance, n, torch.sign(counts), self.generator)
        sent = int(n.sum().item())
        self._written(w, n > 0, sent)
        return sent

    def _send_pulses_at(self, idx: torch.Tensor, counts: torch.Tensor) -> int:
        """``send_pulses`` of a count matrix that is zero outside the flat elements ``idx``.

        ``idx``: strictly increasing flat (row-major) indices, ``counts``: their non-zero signed counts.
        Same result, random draws and draw order as ``send_pulses`` (cycle noise, then write noise,
        both over the pulsed elements in row-major order) but without full-size passes; the
        conductances are updated in place, as the stochastic update does.  Used by transfers that
        pulse a few columns (``steps.fire_pulses``); tests hold it equal to ``send_pulses``.
        """
        if idx.numel() == 0:
            # nothing is drawn or changed, but a numba kernel apply_pulses_at needs is compiled now, at
            # the first transfer, not whenever the first pulse happens to fire
            pulses.apply_pulses_at(self.device, self.params, self.conductance, idx, counts, counts, self.generator)
            return 0
        if not self.conductance.is_contiguous():
            self.conductance = self.conductance.contiguous()
        std = self.device.write_noise_std * self.device.dw_min
        if std > 0 and not self.write_noise.is_contiguous():
            self.write_noise = self.write_noise.contiguous()
        if idx.device.type == "cpu":  # a few hundred elements: numpy's per-call cost is a fraction of torch's
            c, at = counts.double().numpy(), idx.numpy()
            n = np.abs(c)
            kernel = pulses._pulse_kernel(self.device, self.conductance)
            if kernel is not None:  # apply_pulses_at's numba branch without its tensor wrapping
                new = pulses.pulses_at_numpy(kernel, self.device, self.params, self.conductance, at, n, np.sign(c),
                                             self.generator)
            else:
                new = pulses.apply_pulses_at(self.device, self.params, self.conductance, idx, torch.from_numpy(n),
                                             torch.from_numpy(np.sign(c)), self.generator).numpy()
            self.conductance.numpy().reshape(-1)[at] = new
            sent = int(n.sum())
            if std > 0:  # as _written: a fresh draw for every pulsed element
                draw = torch.randn(idx.numel(), generator=self.generator, dtype=torch.float64)
                wn = self.write_noise.numpy()
                wn.reshape(-1)[at] = (std * draw.numpy()).astype(wn.dtype)
                self._write_noise_zero = False
        else:
            n = counts.double().abs()
            new = pulses.apply_pulses_at(self.device, self.params, self.conductance, idx, n, torch.sign(counts),
                                         self.generator)
            self.conductance.view(-1)[idx] = new
            sent = int(n.sum().item())
            if std > 0:
                draw = torch.randn(idx.numel(), generator=self.generator, dtype=torch.float64, device=idx.device)
                self.write_noise.view(-1)[idx] = (std * draw).to(self.write_noise.dtype)
                self._write_noise_zero = False
        self.pulse_count += sent
        return sent

    def program(self, target: torch.Tensor) -> None:
        """Set the weight a read sees to ``target`` (conductance = target + reference, clipped)."""
        target = torch.as_tensor(target, dtype=self.conductance.dtype, device=self.conductance.device)
        target = torch.broadcast_to(target, self.shape)
        check_finite("target", target)
        w = self._clip(target + self.reference)
        self._written(w, torch.ones(self.shape, dtype=torch.bool, device=w.device), 0)

    def _written(self, w: torch.Tensor, touched: torch.Tensor, n_pulses: int) -> None:
        self.conductance = w
        self.pulse_count += n_pulses
        std = self.device.write_noise_std * self.device.dw_min
        if std > 0 and bool(touched.any()):
            idx = touched.nonzero(as_tuple=True)
            draw = torch.randn(idx[0].numel(), generator=self.generator, dtype=torch.float64, device=w.device)
            self.write_noise[idx] = (std * draw).to(w.dtype)
            self._write_noise_zero = False

    def _clip(self, w: torch.Tensor) -> torch.Tensor:
        return self.device.clip(w.double(), self.params).to(w.dtype)

    def _batch(self, name: str, v: torch.Tensor, size: int):
        v = torch.as_tensor(v)
        squeeze = v.dim() == 1
        v = v.unsqueeze(0) if squeeze else v
        check_shape(name, v, (None, size))
        check_finite(name, v)
        return v, squeeze

    # ---- checkpoint -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Every piece of state: arrays, sampled device parameters, generator state, counters."""
        return {
            "conductance": self.conductance.clone(),
            "reference": self.reference.clone(),
            "write_noise": self.write_noise.clone(),
            "params": {k: v.clone() for k, v in self.params.state_dict().items()},
            "generator": self.generator.get_state(),
            "pulse_count": self.pulse_count,
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("conductance", "reference", "write_noise"):
            check_shape(f"state_dict[{key!r}]", state[key], self.shape)
        dev = self.conductance.device
        self.conductance = state["conductance"].to(dev, self.conductance.dtype).clone()
        self.reference = state["reference"].to(dev, self.conductance.dtype).clone()
        self.write_noise = state["write_noise"].to(dev, self.conductance.dtype).clone()
        self._write_noise_zero = not bool(self.write_noise.any())
        self.params = DeviceParams.from_state_dict({k: v.to(dev).clone() for k, v in state["params"].items()})
        self.generator.set_state(state["generator"])
        self.pulse_count = int(state["pulse_count"])
