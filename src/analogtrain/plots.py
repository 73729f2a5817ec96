"""Plots for the command line (matplotlib, Agg backend: files only, no display needed)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .devices.base import Device, DeviceParams  # noqa: E402


def _display_range(device: Device) -> tuple[float, float]:
    """The device's range, or [-1, 1] where a bound is infinite (the ideal device)."""
    lo = device.w_min if math.isfinite(device.w_min) else -1.0
    hi = device.w_max if math.isfinite(device.w_max) else 1.0
    return lo, hi


def pulse_trace(device: Device, p: DeviceParams, w0: torch.Tensor, signs: list[int], gen: torch.Generator,
                noise: bool = True):
    """Apply single pulses one by one (with the device's cycle-to-cycle noise); return all states.

    Per-pulse noise as in training (``pulses.run_with_noise``): additive q + alpha_s s xi (the element's
    slope scales its noise, L1 eq. 2) or multiplicative q (1 + s xi), in units of dw_min.
    """
    w, out = w0.clone(), [w0.clone()]
    sigma = device.dw_min_std if noise else 0.0
    for s in signs:
        q = device.q_plus(w, p) if s > 0 else device.q_minus(w, p)
        if sigma > 0:
            xi = torch.randn(w.shape, generator=gen, dtype=torch.float64)
            slope = p.up if s > 0 else p.down
            q = q + slope * sigma * xi if device.c2c_mode == "additive" else q * (1 + sigma * xi)
        w = device.clip(w + s * device.dw_min * q, p)
        out.append(w.clone())
    return torch.stack(out)


def plot_device(device: Device, out_path, n_elements: int = 6, n_pulses: int | None = None, seed: int = 0):
    """Left: q+, q-, F, G of the nominal device with its symmetric point.  Right: ``n_pulses`` up then
    ``n_pulses`` down pulses on ``n_elements`` sampled elements (device-to-device spread and
    cycle-to-cycle noise, seeded) and the nominal element.  Writes ``out_path``; returns the figure path.
    """
    lo, hi = _display_range(device)
    if n_pulses is None:
        states = device.n_states if math.isfinite(device.n_states) else (hi - lo) / device.dw_min
        n_pulses = max(2, min(5000, math.ceil(1.2 * states)))  # enough to cross the range once
    w = torch.linspace(lo, hi, 401, dtype=torch.float64)
    sp = float(device.symmetric_point())
    sp = 0.0 if abs(sp) < 1e-12 * (hi - lo) else sp  # bisection round-off, not a real offset

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax0.plot(w, device.q_plus(w), label="$q_+$ (up)", color="tab:red")
    ax0.plot(w, device.q_minus(w), label="$q_-$ (down)", color="tab:blue")
    ax0.plot(w, device.F(w), label="F = $(q_-+q_+)/2$", color="k", ls="--")
    ax0.plot(w, device.G(w), label="G = $(q_--q_+)/2$", color="tab:green", ls=":")
    ax0.axhline(0, color="0.7", lw=0.8)
    ax0.axvline(sp, color="tab:purple", lw=1, label=f"symmetric point {sp:.3g}")
    ax0.set(xlabel="weight w", ylabel="response (step / dw_min)", title=f"{device.name}: response (nominal)")
    ax0.legend(fontsize=8, loc="best")

    gen = torch.Generator().manual_seed(seed)
    p = device.sample((n_elements,), generator=gen)
    start = p.w_min.clamp(min=lo)  # each element starts at its own lower bound (0-based for ideal)
    signs = [1] * n_pulses + [-1] * n_pulses
    traces = pulse_trace(device, p, start, signs, gen)
    nom = device.nominal()
    nominal = pulse_trace(device, nom, nom.w_min.clamp(min=lo).reshape(1), signs, gen, noise=False)
    ax1.plot(traces.numpy(), lw=0.9, alpha=0.8)
    ax1.plot(nominal.numpy(), color="k", lw=1.5, ls="--", label="nominal, no noise")
    ax1.axvline(n_pulses, color="0.7", lw=0.8)
    ax1.axhline(sp, color="tab:purple", lw=0.8, ls=":")
    ax1.set(xlabel="pulse number (up, then down)", ylabel="weight w",
            title=f"{n_elements} sampled elements, dw_min = {device.dw_min:.3g}, n_states = {device.n_states:.4g}")
    ax1.legend(fontsize=8, loc="lower center")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_training(rows: list[dict], out_path) -> None:
    """Loss and accuracy per epoch, one line per run (analog / digital), train dashed, test solid."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for run in sorted({r["run"] for r in rows}):
        rs = [r for r in rows if r["run"] == run]
        ep = [r["epoch"] for r in rs]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            (line,) = ax.plot(ep, [r[f"test_{key}"] for r in rs], marker="o", label=f"{run} test")
            ax.plot(ep, [r[f"train_{key}"] for r in rs], ls="--", color=line.get_color(), label=f"{run} train")
    ax_loss.set(xlabel="epoch", ylabel="NLL loss", yscale="log", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
