"""The optimizer front: analog layers take their in-memory step, every other parameter plain SGD.

``AnalogOptimizer`` is a ``torch.optim.Optimizer``, so lr schedulers (StepLR, LambdaLR, ...) drive it
unchanged: the analog step uses the group's current ``lr`` (papers.md §3(d): StepLR schedules).
Momentum and weight decay apply to digital parameters only; the analog update is exactly
``algorithm.step(x, d, lr)`` with the recorded rows (whatever the algorithm's plan is).

Algorithms that react to the training loss (P3's warm start, ``MultiTile.observe_loss``) get it through
``observe_loss(loss)``: the trainer calls it once per step with the batch loss, before ``step``, and
``step(closure)`` calls it itself with the closure's loss (in both cases before the analog update, the
order of P3 Algorithm 1: the loss is appended, the plateau rule may switch tiles, then the transfer);
the trainer also calls ``observe_loss(mean, per="epoch")`` with each epoch's mean training loss (the loss
P3's code watches).

Convention: ``zero_grad`` also drops the analog layers' pending records, just as it drops the
digital gradients, so a step never applies rows from an earlier, discarded backward.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, check_choice
from .layers import layer_of


class AnalogOptimizer(torch.optim.Optimizer):
    """SGD for digital parameters (torch semantics: momentum buffer, L2 weight decay, no dampening),
    ``layer.analog_step(lr)`` for every analog layer's weight mirror in the groups."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not v >= 0.0:
                raise ConfigError(f"{name} must be >= 0, got {v!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _analog(self):
        """(group, layer) for every analog weight in the groups, in parameter order."""
        for group in self.param_groups:
            for p in group["params"]:
                layer = layer_of(p)
                if layer is not None:
                    yield group, layer

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
            if loss is not None:
                self.observe_loss(float(loss))
        for group, layer in self._analog():
            layer.analog_step(group["lr"])
        for group in self.param_groups:
            lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None or layer_of(p) is not None:
                    continue
                g = p.grad.add(p, alpha=wd) if wd else p.grad
                if mom:
                    buf = self.state[p].get("momentum_buffer")
                    if buf is None:
                        buf = self.state[p]["momentum_buffer"] = g.detach().clone()
                    else:
                        buf.mul_(mom).add_(g)
                    g = buf
                p.add_(g, alpha=-lr)
        return loss

    def observe_loss(self, loss: float, per: str = "step") -> None:
        """Hand a training loss to every analog layer's algorithm that defines ``observe_loss``.

        ``per = "step"``: the batch loss, before ``step``; ``per = "epoch"``: the epoch's mean training loss.
        """
        loss = float(loss)
        if not math.isfinite(loss):
            raise ValueError(f"observe_loss needs a finite loss, got {loss!r}")
        check_choice("per", per, ("step", "epoch"))
        for _, layer in self._analog():
            observe = getattr(layer.algorithm, "observe_loss", None)
            if observe is not None:
                observe(loss, per)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for _, layer in self._analog():
            layer.reset_records()
        super().zero_grad(set_to_none)

    def state_dict(self) -> dict:
        """torch's optimizer state plus ``"analog"``: every analog layer's state, in parameter order."""
        state = super().state_dict()
        state["analog"] = [layer.get_extra_state() for _, layer in self._analog()]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        analog = state_dict.pop("analog", None)
        if analog is not None:
            layers = [layer for _, layer in self._analog()]
            if len(analog) != len(layers):
                raise ConfigError(f"optimizer state holds {len(analog)} analog layers, this optimizer has {len(layers)}")
            for layer, s in zip(layers, analog):
                layer.set_extra_state(s)
        super().load_state_dict(state_dict)
