"""Turning a wanted change into pulses on a device: three fidelity levels behind one interface.

``UpdateConfig.mode`` picks, per tile:

* ``expected`` -- the discrete-time analog update of P1 eq. 7 / P2 eq. 5,
  ``W + dW * F(W) - |dW| * G(W)``, optionally plus zero-mean granularity noise of variance
  ``dw_min * |dW|`` (the leading term of P3 Lemma 1; P3 eq. 2, P5 Assumption 3.4).
* ``pulses`` -- dW sent as ``ceil(|dW| / dw_min)`` (P2 eq. 29) or stochastically rounded single pulses
  of sign(dW), applied in sequence with per-pulse cycle-to-cycle noise (P2 eq. 26).
* ``stochastic`` -- the rank-one update ``-lr * d x^T`` of a layer by stochastic pulse trains with
  coincidence counting (Gokmen & Vlasov 2016; papers.md §1.5): per sample a train length BL (fixed,
  or by update-BL management), row/column firing probabilities (with update management), and at
  each coincidence one pulse of sign ``-sign(d_j x_i)``.  Samples are applied one after the other in
  batch order, as the papers' simulator does.

The stochastic update has two implementations that consume the same random numbers
(``rng.py``): a readable dense torch reference (``stochastic_update_reference``) and a fused numba
kernel (``stochastic_update_fast``) that enumerates only active rows and columns, counts
coincidences with bit masks and touches only elements that receive pulses.  ``stochastic_update``
picks the kernel on CPU and the reference elsewhere; tests hold the two equal.

All device math is done in float64 and stored in the array's dtype after each sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from . import rng
from .devices.base import Device, DeviceParams
from .errors import check_bool, check_choice, check_int

MODES = ("expected", "pulses", "stochastic")
MAX_TRAIN = 62  # bit masks hold one slot per bit of an int64 (two uniforms per hash word)


@dataclass(frozen=True)
class UpdateConfig:
    """How a tile turns an update into pulses (defaults: aihwkit's pulsed update, papers.md §1.5)."""

    mode: str = "stochastic"
    bl: int = 31  # desired / maximal pulse-train length (aihwkit desired_BL)
    update_bl_management: bool = True
    update_management: bool = True
    rounding: str = "stochastic"  # pulses mode: "ceil" (P2 eq. 29) or "stochastic"
    max_pulses: int = 0  # pulses mode: cap on pulses per element per update (0 = no cap)
    granularity_noise: bool = False  # expected mode: add zero-mean noise of variance dw_min*|dW|
    fast: str = "auto"  # stochastic mode: "auto" (kernel on CPU), "kernel" or "reference"

    def __post_init__(self):
        check_choice("mode", self.mode, MODES)
        object.__setattr__(self, "bl", check_int("bl", self.bl, 1, MAX_TRAIN))  # a file's 31.0 becomes 31
        for name in ("update_bl_management", "update_management", "granularity_noise"):
            check_bool(name, getattr(self, name))
        check_choice("rounding", self.rounding, ("ceil", "stochastic"))
        object.__setattr__(self, "max_pulses", check_int("max_pulses", self.max_pulses, 0))
        check_choice("fast", self.fast, ("auto", "kernel", "reference"))


# =============================================================================================
# expected and pulses modes (dense torch; a change matrix dW)
# =============================================================================================
def expected_update(
    device: Device,
    p: DeviceParams,
    w: torch.Tensor,
    dw: torch.Tensor,
    generator: torch.Generator | None = None,
    granularity_noise: bool = False,
    fast: str = "auto",
) -> torch.Tensor:
    """P1 eq. 7 / P2 eq. 5: ``W + dW * F(W) - |dW| * G(W)``, clipped to the element bounds.

    Computed in the equivalent piecewise form ``W + dW * q_sign(dW)(W)`` (one response evaluation
    per element), by a fused kernel on CPU or by torch elsewhere.
    """
    if fast == "kernel" or (fast == "auto" and w.device.type == "cpu"):
        new = w.clone()
        up, down, w_max, w_min = p.numpy_arrays(w.shape)
        _pick(_expected_kernel_for(device), new.numel())(new.numpy(), dw.contiguous().numpy(), up, down, w_max, w_min,
                                     device.constants().numpy())
    else:
        w64, dw64 = w.double(), dw.double()
        q = torch.where(dw64 > 0, device.q_plus(w64, p), device.q_minus(w64, p))
        new = device.clip(w64 + dw64 * q, p).to(w.dtype)
    if granularity_noise:
        std = (device.dw_min * dw.double().abs()).sqrt()
        xi = torch.randn(w.shape, generator=generator, dtype=torch.float64, device=w.device)
        new = device.clip(new.double() + std * xi, p).to(w.dtype)
    return new


def pulse_counts(
    dw: torch.Tensor, dw_min: float, rounding: str, generator=None, max_pulses: int = 0
) -> torch.Tensor:
    """Number of single pulses realising |dW| (P2 eq. 29: ceil(|dW| / dw_min), or unbiased rounding)."""
    ratio = dw.double().abs() / dw_min
    if rounding == "ceil":
        n = torch.ceil(ratio)
    else:
        n = torch.floor(ratio + torch.rand(ratio.shape, generator=generator, dtype=torch.float64, device=dw.device))
    return n.clamp(max=max_pulses) if max_pulses else n


def run_with_noise(device: Device, p: DeviceParams, w: torch.Tensor, n: torch.Tensor, sign: torch.Tensor,
                   normal) -> torch.Tensor:
    """``n`` pulses of ``sign`` on every element (float64) with cycle-to-cycle noise (P2 eq. 26).

    Noise-free and additive-noise runs use the family's closed form when it has one: one normal
    per element, ``normal(0)``, scaled by the run's noise gain.  Otherwise the pulses are applied one
    at a time, pulse ``k`` drawing ``normal(k)``.  ``normal(k)`` returns a tensor of ``w``'s shape.
    """
    sigma, additive = device.dw_min_std, device.c2c_mode == "additive"
    slope = torch.where(sign > 0, p.up, p.down)
    if sigma == 0 or (device.has_closed_form and additive):
        new = device.run(w, n, sign, p)
        if sigma > 0:
            gain = device.noise_gain(n, sign, p)
            new = device.clip(new + sign * device.dw_min * slope * sigma * gain * normal(0), p)
        return new
    new = w
    for k in range(int(n.max().item()) if n.numel() else 0):
        q = torch.where(sign > 0, device.q_plus(new, p), device.q_minus(new, p))
        xi = normal(k)
        noisy = q + slope * sigma * xi if additive else q * (1 + sigma * xi)
        new = torch.where(n > k, device.clip(new + sign * device.dw_min * noisy, p), new)
    return new


def apply_pulses(
    device: Device,
    p: DeviceParams,
    w: torch.Tensor,
    n: torch.Tensor,
    sign: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply ``n`` pulses of ``sign`` to each element (``run_with_noise``), touching only elements with n > 0."""
    flat = w.reshape(-1)
    idx = (n.reshape(-1) > 0).nonzero().squeeze(1)
    if idx.numel() == 0:
        return w
    sub = DeviceParams(*(torch.broadcast_to(t, w.shape).reshape(-1)[idx] for t in p.state_dict().values()))
    w0, ns, ss = flat[idx].double(), n.reshape(-1)[idx].double(), sign.reshape(-1)[idx].double()
    randn = lambda k: torch.randn(w0.shape, generator=generator, dtype=torch.float64, device=w.device)  # noqa: E731
    new = run_with_noise(device, sub, w0, ns, ss, randn)
    out = flat.clone()
    out[idx] = new.to(w.dtype)
    return out.reshape(w.shape)


def apply_pulses_at(
    device: Device,
    p: DeviceParams,
    w: torch.Tensor,
    idx: torch.Tensor,
    n: torch.Tensor,
    sign: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """New values (``w``'s dtype) of the elements ``idx`` of ``w`` after ``n`` pulses of ``sign``.

    ``idx``: strictly increasing flat (row-major) indices, ``n > 0`` and ``sign`` the matching 1-d
    values.  Same arithmetic and random draws as ``apply_pulses`` on a count matrix that is zero
    outside ``idx`` (it enumerates its elements in the same row-major order), without a full-size
    pass: for transfers that pulse one column of a large array (tests hold the two equal).

    ``run_with_noise``'s pulse-by-pulse branch (cycle noise without an additive closed form, e.g.
    multiplicative c2c) runs as a numba loop over the elements on CPU float32 arrays, fed with the
    same ``torch.randn`` draws; like the stochastic kernel it evaluates the family's response in
    float64 scalars, which float32 storage keeps identical to the torch reference (the test holds
    every family to it).  Everything else uses ``run_with_noise`` itself on the selected elements.
    """
    n, sign = n.double(), sign.double()
    m = idx.numel()
    kernel = _pulse_kernel(device, w)
    if m == 0:
        return w.new_empty(0)
    if kernel is not None:
        return torch.from_numpy(pulses_at_numpy(kernel, device, p, w, idx.numpy(), n.numpy(), sign.numpy(), generator))
    if w.device.type == "cpu":  # cached contiguous copies: a flat view to index, no broadcast copy
        sub = DeviceParams(*(torch.from_numpy(a).view(-1)[idx] for a in p.numpy_arrays(w.shape)))
    else:
        sub = DeviceParams(*(torch.broadcast_to(t, w.shape).reshape(-1)[idx] for t in p.state_dict().values()))
    w0 = w.reshape(-1)[idx].double()
    randn = lambda k: torch.randn(w0.shape, generator=generator, dtype=torch.float64, device=w.device)  # noqa: E731
    return run_with_noise(device, sub, w0, n, sign, randn).to(w.dtype)


def pulses_at_numpy(kernel, device: Device, p: DeviceParams, w: torch.Tensor, idx: np.ndarray, n: np.ndarray,
                    sign: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
    """``apply_pulses_at``'s numba branch (``kernel = _pulse_kernel(device, w)``, not None) on numpy
    arrays: int64 ``idx`` (at least one), float64 ``n`` and ``sign``; returns the new values in ``w``'s
    dtype.  ``AnalogTile._send_pulses_at`` calls it directly (fewer conversions per transfer)."""
    m = idx.shape[0]
    # the reference draws one randn over the selected elements per pulse index k < max(n)
    xi = [torch.randn(m, generator=generator, dtype=torch.float64).numpy() for _ in range(int(n.max()))]
    xi = xi[0].reshape(1, m) if len(xi) == 1 else np.stack(xi) if xi else np.empty((0, m))
    out = np.empty(m, dtype=np.float64)
    wn = w.numpy().reshape(-1)
    kernel(wn, idx, n, sign, xi, _param_rows(p, w.shape), _constants(device), float(device.dw_min),
           float(device.dw_min_std), device.c2c_mode == "additive", out)
    return out.astype(wn.dtype)  # (rounds as torch's .to(w.dtype))


def _pulse_kernel(device: Device, w: torch.Tensor):
    """The numba kernel ``apply_pulses_at`` uses for ``device`` on ``w`` (compiled on first request), or
    None where it keeps torch: ``run_with_noise``'s pulse-by-pulse branch on a CPU float32 array."""
    per_pulse = device.dw_min_std > 0 and not (device.has_closed_form and device.c2c_mode == "additive")
    if per_pulse and w.device.type == "cpu" and w.dtype == torch.float32 and type(device).clip is Device.clip:
        return _pulses_at_kernel_for(device)
    return None


def _constants(device: Device) -> np.ndarray:
    """``device.constants()`` as float64 numpy, kept on the (frozen) device: a kernel call per transfer
    need not build the tensor again."""
    c = device.__dict__.get("_constants_np")
    if c is None:
        c = device.constants().numpy()
        device.__dict__["_constants_np"] = c
    return c


def _param_rows(p: DeviceParams, shape) -> np.ndarray:
    """(elements, 4) rows (up, down, w_max, w_min) of a CPU array's parameters, cached like
    ``DeviceParams.numpy_arrays`` (a copy of the parameters, kept while they are the same tensors).

    A transfer pulses the elements of a column, one per row of the array: with the four parameters
    of an element side by side that is one cache line per element instead of four.
    """
    key = (tuple(shape), id(p.up), id(p.down), id(p.w_max), id(p.w_min))  # (state_dict's order, cheaper)
    cache = p.__dict__.get("_param_rows")
    if cache is None or cache[0] != key:
        rows = torch.stack([torch.broadcast_to(t, shape).reshape(-1) for t in p.state_dict().values()], dim=1)
        cache = (key, rows.numpy())
        p.__dict__["_param_rows"] = cache
    return cache[1]


def _pulses_at_kernel_for(device: Device):
    """``run_with_noise``'s pulse-by-pulse branch on the elements ``idx`` of a flat array, compiled
    once per family: pulse k of element t (while k < n[t]) uses the normal ``xi[k, t]``; the same
    float64 operations in the same order as the torch loop."""
    cls = type(device)
    key = (cls, "pulses_at")
    if key not in _KERNELS:
        q_up, q_down = numba.njit(cls.q_up_fn), numba.njit(cls.q_down_fn)

        def kernel(w, idx, n, sign, xi, prm, c, dw, sigma, additive, out):
            for t in range(idx.shape[0]):
                e = idx[t]
                v = np.float64(w[e])
                s = sign[t]
                up, down, wmax, wmin = prm[e, 0], prm[e, 1], prm[e, 2], prm[e, 3]
                a = up if s > 0 else down  # run_with_noise's slope
                for k in range(xi.shape[0]):
                    if not n[t] > k:
                        break
                    q = q_up(v, up, wmax, wmin, c) if s > 0 else q_down(v, down, wmax, wmin, c)
                    x = xi[k, t]
                    noisy = q + a * sigma * x if additive else q * (1.0 + sigma * x)
                    v = min(max(v + s * dw * noisy, wmin), wmax)
                out[t] = v

        jitted = numba.njit(kernel)
        # compile now for the usual argument types (C-contiguous), with no elements to work on
        f64 = np.empty(0, dtype=np.float64)
        jitted(np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64), f64, f64, np.empty((0, 0)),
               np.empty((0, 4)), f64, 0.0, 0.0, False, f64)
        _KERNELS[key] = jitted
    return _KERNELS[key]


# =============================================================================================
# stochastic pulse trains (rank-one updates, sample by sample)
# =============================================================================================
def train_plan(x: torch.Tensor, d: torch.Tensor, lr: float, dw_min: float, cfg: UpdateConfig):
    """Per-sample train lengths and firing probabilities (papers.md §1.5, steps 1 and 3).

    Returns ``(bl, px, pd)``: int64 (B,) train lengths (0 = no pulse for that sample) and float64
    firing probabilities of the rows (inputs x, shape (B, n_in)) and columns (errors d, (B, n_out)),
    such that the expected coincidences are ``bl * px_i * pd_j = lr |x_i d_j| / dw_min``.
    """
    x, d = x.double(), d.double()
    x_max = x.abs().amax(dim=1)
    d_max = d.abs().amax(dim=1)
    active = (x_max > 0) & (d_max > 0)
    if cfg.update_bl_management:
        bl = torch.ceil(lr * x_max * d_max / dw_min).clamp(min=1, max=cfg.bl)
    else:
        bl = torch.full_like(x_max, cfg.bl)
    bl = torch.where(active, bl, torch.zeros_like(bl))
    scale = torch.sqrt(lr / (dw_min * bl.clamp(min=1)))  # A = B = sqrt(lr / (dw_min BL))
    if cfg.update_management:
        ratio = torch.where(active, torch.sqrt(d_max / x_max.clamp(min=1e-300)), torch.ones_like(x_max))
    else:
        ratio = torch.ones_like(x_max)
    px = (scale * ratio).unsqueeze(1) * x.abs()
    pd = (scale / ratio).unsqueeze(1) * d.abs()
    return bl.long(), px.clamp(max=1.0), pd.clamp(max=1.0)


def _slot_counter(b, line, t, n_lines: int, half: int):
    """Counter of the 64-bit word holding slot t of one row/column (two slots per word)."""
    return (b * n_lines + line) * half + t // 2


def firing_masks_reference(seed: int, bl: torch.Tensor, probs: torch.Tensor, max_bl: int) -> torch.Tensor:
    """Bit masks (B, n_lines) int64: bit t set iff the line fires in slot t (t < bl of the sample)."""
    b_count, n_lines = probs.shape
    half = (max_bl + 1) // 2
    b = torch.arange(b_count, device=probs.device).view(-1, 1, 1)
    line = torch.arange(n_lines, device=probs.device).view(1, -1, 1)
    t = torch.arange(max_bl, device=probs.device).view(1, 1, -1)
    hi, lo = rng.uniform_pair_torch(seed, _slot_counter(b, line, t, n_lines, half))
    u = torch.where(t % 2 == 0, hi, lo)
    fire = (u < probs.unsqueeze(2)) & (t < bl.view(-1, 1, 1))
    weights = torch.tensor([1 << k for k in range(max_bl)], dtype=torch.int64, device=probs.device)
    return (fire.long() * weights).sum(dim=2)


def _noise_counter(b, j, i, k, n_out: int, n_in: int, max_bl: int):
    return ((b * n_out + j) * n_in + i) * max_bl + k


def stochastic_update_reference(
    device: Device, p: DeviceParams, w: torch.Tensor, x: torch.Tensor, d: torch.Tensor,
    lr: float, cfg: UpdateConfig, seeds: tuple[int, int],
):
    """Dense torch reference of the stochastic pulse update (one Python step per sample).

    Returns ``(w_new, touched, n_pulses)``.  Same random numbers as the kernel: bit masks from
    ``seeds[0]``, per-pulse noise from ``seeds[1]`` keyed by (sample, row, column, pulse).
    """
    n_out, n_in = w.shape
    bl, px, pd = train_plan(x, d, lr, device.dw_min, cfg)
    lines = torch.cat([px, pd], dim=1)
    masks = firing_masks_reference(seeds[0], bl, lines, cfg.bl)
    mx, md = masks[:, :n_in], masks[:, n_in:]
    weights = torch.tensor([1 << k for k in range(cfg.bl)], dtype=torch.int64, device=w.device)
    touched = torch.zeros(w.shape, dtype=torch.bool, device=w.device)
    jj = torch.arange(n_out, device=w.device).view(-1, 1)
    ii = torch.arange(n_in, device=w.device).view(1, -1)
    total = 0
    for b in range(x.shape[0]):
        if bl[b] == 0:
            continue
        bits_x = ((mx[b].view(1, -1) & weights.view(-1, 1)) != 0).double()  # (BL, n_in)
        bits_d = ((md[b].view(1, -1) & weights.view(-1, 1)) != 0).double()  # (BL, n_out)
        n = bits_d.T @ bits_x  # coincidences per element
        sign = -torch.sign(d[b].double()).view(-1, 1) * torch.sign(x[b].double()).view(1, -1)
        normal = lambda k: rng.normal_torch(seeds[1], _noise_counter(b, jj, ii, k, n_out, n_in, cfg.bl))  # noqa: E731
        new = run_with_noise(device, p, w.double(), n, sign, normal)
        hit = n > 0
        w = torch.where(hit, new.to(w.dtype), w)
        touched |= hit
        total += int(n.sum().item())
    return w, touched, total


# ---- fused numba kernels ---------------------------------------------------------------------------
PARALLEL_MIN = 1 << 14  # elements; below this numba's thread pool costs more than it saves
PARALLEL_MIN_MASKS = 1 << 14  # rows + columns of a batch: the same for drawing the firing masks


def _serial_and_parallel(fn, cache=False):
    """Compile ``fn`` twice: plain (prange runs as range) and multi-threaded over its prange."""
    return numba.njit(cache=cache)(fn), numba.njit(parallel=True, cache=cache)(fn)


def _pick(kernels, n_elements: int):
    return kernels[n_elements >= PARALLEL_MIN]


@numba.njit(inline="always")
def _line_masks(vals, sc, seed, ctr0, half, n_bl, masks, signs):
    """Firing masks and signs of one sample's lines ``vals`` (its x or its d; probability ``sc * |v|``),
    the first line's draws at counter ``ctr0``: ``firing_masks_reference``'s draws, line by line."""
    if n_bl == 1:  # one draw per line (update-BL management's usual case): branch-free, so LLVM vectorises it
        for i in range(vals.shape[0]):
            v = np.float64(vals[i])
            z = rng.hash_nb(seed, ctr0 + i * half)
            masks[i] = np.int64(np.float64(z >> np.uint64(32)) * rng.TWO_POW_M32 < min(sc * abs(v), 1.0))
            signs[i] = 1 if v > 0 else -1
        return
    for i in range(vals.shape[0]):
        v = np.float64(vals[i])
        pr = min(sc * abs(v), 1.0)
        m = np.int64(0)
        if pr > 0.0:
            for t in range(n_bl):  # one hash gives the draws of pulses 2k (high bits) and 2k + 1 (low bits)
                z = rng.hash_nb(seed, ctr0 + i * half + t // 2)
                bits = z >> np.uint64(32) if t % 2 == 0 else z & np.uint64(0xFFFFFFFF)
                if np.float64(bits) * rng.TWO_POW_M32 < pr:
                    m |= np.int64(1) << np.int64(t)
        masks[i] = m
        signs[i] = 1 if v > 0 else -1


def _plan_and_masks_py(x, d, lr, dw_min, max_bl, ublm, um, seed, mx, md, sx, sd, active_x, n_active):
    """``train_plan`` + ``firing_masks_reference`` fused (same float64 arithmetic, same draws).

    Also records the signs of x and d and, per sample, the inputs that fire at least once.
    """
    b_count, n_in = x.shape
    n_out = d.shape[1]
    n_lines = n_in + n_out
    half = (max_bl + 1) // 2
    for b in numba.prange(b_count):
        x_max = 0.0
        for i in range(n_in):
            x_max = max(x_max, abs(np.float64(x[b, i])))
        d_max = 0.0
        for j in range(n_out):
            d_max = max(d_max, abs(np.float64(d[b, j])))
        n_active[b] = 0
        if not (x_max > 0.0 and d_max > 0.0):  # silent sample: no active inputs, and the kernel skips its rows
            md[b, :] = 0
            continue
        bl = min(max(np.ceil(lr * x_max * d_max / dw_min), 1.0), max_bl) if ublm else np.float64(max_bl)
        scale = np.sqrt(lr / (dw_min * bl))
        ratio = np.sqrt(d_max / x_max) if um else 1.0
        ctr0 = b * n_lines * half  # line l of sample b draws from counter (b * n_lines + l) * half on
        _line_masks(x[b], scale * ratio, seed, ctr0, half, int(bl), mx[b], sx[b])
        _line_masks(d[b], scale / ratio, seed, ctr0 + n_in * half, half, int(bl), md[b], sd[b])
        k = 0
        for i in range(n_in):
            if mx[b, i] != 0:
                active_x[b, k] = i
                k += 1
        n_active[b] = k


_PLAN_AND_MASKS = _serial_and_parallel(_plan_and_masks_py, cache=True)


_KERNELS: dict = {}


@numba.njit
def _no_run(w, n, dw, a, wmax, wmin, c):  # placeholder for families without a closed form
    return w


@numba.njit
def _no_gain(n, dw, a, wmax, wmin, c):
    return 0.0


def _expected_kernel_for(device: Device):
    """Fused ``W + dW * q_sign(dW)(W)`` for ``device``'s family, compiled once per family."""
    cls = type(device)
    key = (cls, "expected")
    if key not in _KERNELS:
        q_up, q_down = numba.njit(cls.q_up_fn), numba.njit(cls.q_down_fn)

        def kernel(w, dw, up, down, wmax, wmin, c):
            for j in numba.prange(w.shape[0]):
                for i in range(w.shape[1]):
                    v = np.float64(dw[j, i])
                    x = np.float64(w[j, i])
                    if v > 0.0:
                        q = q_up(x, up[j, i], wmax[j, i], wmin[j, i], c)
                    elif v < 0.0:
                        q = q_down(x, down[j, i], wmax[j, i], wmin[j, i], c)
                    else:
                        continue
                    w[j, i] = min(max(x + v * q, wmin[j, i]), wmax[j, i])

        _KERNELS[key] = _serial_and_parallel(kernel)
    return _KERNELS[key]


def _kernel_for(device: Device):
    """The fused per-element update kernel for ``device``'s family, compiled once per family."""
    cls = type(device)
    if cls in _KERNELS:
        return _KERNELS[cls]
    q_up, q_down = numba.njit(cls.q_up_fn), numba.njit(cls.q_down_fn)
    closed = cls.run_up_fn is not None
    run_up = numba.njit(cls.run_up_fn) if closed else _no_run
    run_down = numba.njit(cls.run_down_fn) if closed else _no_run
    gain_up = numba.njit(cls.gain_up_fn) if closed else _no_gain
    gain_down = numba.njit(cls.gain_down_fn) if closed else _no_gain

    @numba.njit(inline="always")
    def run_pulses(w, n, s, a, wmax, wmin, c, dw, sigma, additive, seed, ctr, table):
        """n pulses of sign s on one element: closed form where exact, else one by one."""
        if closed and (sigma == 0.0 or additive):
            nf = np.float64(n)
            if s > 0:
                new = min(max(run_up(w, nf, dw, a, wmax, wmin, c), wmin), wmax)
            else:
                new = min(max(run_down(w, nf, dw, a, wmax, wmin, c), wmin), wmax)
            if sigma > 0.0:
                g = gain_up(nf, dw, a, wmax, wmin, c) if s > 0 else gain_down(nf, dw, a, wmax, wmin, c)
                new = min(max(new + s * dw * a * sigma * g * rng.normal_nb(seed, ctr, table), wmin), wmax)
            return new
        for k in range(n):
            q = q_up(w, a, wmax, wmin, c) if s > 0 else q_down(w, a, wmax, wmin, c)
            if sigma > 0.0:
                xi = rng.normal_nb(seed, ctr + k, table)
                q = q + a * sigma * xi if additive else q * (1.0 + sigma * xi)
            w = min(max(w + s * dw * q, wmin), wmax)
        return w

    def kernel(w, up, down, wmax, wmin, c, dw, sigma, additive, seed, table,
               mx, md, sx, sd, active_x, n_active, max_bl, touched, n_blocks):
        n_out, n_in = w.shape
        total = 0
        for block in numba.prange(n_blocks):  # rows are independent: each thread owns a block of them
            j_lo, j_hi = block * n_out // n_blocks, (block + 1) * n_out // n_blocks
            # samples outermost (every element still takes its pulses in sample order), so the masks are
            # read along their rows, not down their columns
            for b in range(mx.shape[0]):
                if n_active[b] == 0:
                    continue
                for j in range(j_lo, j_hi):
                    m_d = md[b, j]
                    if m_d == 0:
                        continue
                    for t in range(n_active[b]):
                        i = active_x[b, t]
                        cnt = 0
                        v = mx[b, i] & m_d
                        while v:  # popcount
                            v &= v - 1
                            cnt += 1
                        if cnt == 0:
                            continue
                        s = -1.0 if sd[b, j] * sx[b, i] > 0 else 1.0
                        a = up[j, i] if s > 0 else down[j, i]
                        ctr = ((b * n_out + j) * n_in + i) * max_bl
                        w[j, i] = run_pulses(np.float64(w[j, i]), cnt, s, a, wmax[j, i], wmin[j, i], c,
                                             dw, sigma, additive, seed, ctr, table)
                        touched[j, i] = True
                        total += cnt
        return total

    _KERNELS[cls] = _serial_and_parallel(kernel)
    return _KERNELS[cls]


_SCRATCH: dict = {}
SCRATCH_BYTES = 256 << 20  # what the kept scratch arrays may hold in all; larger sets are made per call


def _scratch(b_count: int, n_in: int, n_out: int) -> tuple:
    """The firing masks, signs and active-input lists of one update (every entry the kernels read is
    written first), kept per shape: fresh megabyte arrays would cost a page fault per 4 kB on first touch.
    Updates run one at a time in a process (the optimizer steps its layers in turn), so one set per shape;
    the oldest sets go when the kept ones would exceed ``SCRATCH_BYTES`` (a ResNet's many conv shapes)."""
    key = (b_count, n_in, n_out)
    if key in _SCRATCH:
        return _SCRATCH[key]
    arrays = (np.empty((b_count, n_in), dtype=np.int64), np.empty((b_count, n_out), dtype=np.int64),
              np.empty((b_count, n_in), dtype=np.int8), np.empty((b_count, n_out), dtype=np.int8),
              np.empty((b_count, n_in), dtype=np.int64), np.empty(b_count, dtype=np.int64))
    size = sum(a.nbytes for a in arrays)
    if size <= SCRATCH_BYTES // 4:
        while _SCRATCH and size + sum(a.nbytes for v in _SCRATCH.values() for a in v) > SCRATCH_BYTES:
            _SCRATCH.pop(next(iter(_SCRATCH)))
        _SCRATCH[key] = arrays
    return arrays


def stochastic_update_fast(
    device: Device, p: DeviceParams, w: torch.Tensor, x: torch.Tensor, d: torch.Tensor,
    lr: float, cfg: UpdateConfig, seeds: tuple[int, int],
):
    """Fused CPU kernel; same contract and random numbers as ``stochastic_update_reference``.

    Updates ``w`` in place and returns ``(w, touched, n_pulses)``.
    """
    n_out, n_in = w.shape
    b_count = x.shape[0]
    xn, dn = x.contiguous().numpy(), d.contiguous().numpy()
    mx, md, sx, sd, active_x, n_active = _scratch(b_count, n_in, n_out)
    _PLAN_AND_MASKS[x.numel() + d.numel() >= PARALLEL_MIN_MASKS](xn, dn, float(lr), float(device.dw_min), cfg.bl, cfg.update_bl_management,
                       cfg.update_management, np.uint64(seeds[0]), mx, md, sx, sd, active_x, n_active)
    touched = np.zeros((n_out, n_in), dtype=np.bool_)
    up, down, w_max, w_min = p.numpy_arrays(w.shape)
    threaded = w.numel() >= PARALLEL_MIN
    total = _kernel_for(device)[threaded](
        w.numpy(), up, down, w_max, w_min, device.constants().numpy(), float(device.dw_min),
        float(device.dw_min_std), device.c2c_mode == "additive", np.uint64(seeds[1]),
        rng.NORMAL_TABLE, mx, md, sx, sd, active_x, n_active, cfg.bl, touched,
        min(numba.get_num_threads(), n_out) if threaded else 1,
    )
    return w, torch.from_numpy(touched), int(total)


def stochastic_update(device, p, w, x, d, lr, cfg: UpdateConfig, generator=None):
    """``stochastic`` mode: pulse trains for ``-lr * d^T x``, sample by sample (papers.md §1.5).

    Draws two stream seeds from ``generator`` and dispatches to the kernel (CPU) or the reference.
    Returns ``(w_new, touched, n_pulses)``.
    """
    seeds = (rng.draw_seed(generator), rng.draw_seed(generator))
    use_kernel = cfg.fast == "kernel" or (cfg.fast == "auto" and w.device.type == "cpu")
    fn = stochastic_update_fast if use_kernel else stochastic_update_reference
    return fn(device, p, w, x, d, lr, cfg, seeds)
