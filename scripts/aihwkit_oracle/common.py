"""Shared parts of the oracle scripts: the data file, the epoch loop, the analog-layer mapping."""

import time

import torch
import torch.nn.functional as F


def perfect_mapping(rpu_config):
    """No weight scaling and no splitting of large layers into several tiles (as analogtrain's layers)."""
    rpu_config.mapping.weight_scaling_omega = 0.0
    rpu_config.mapping.max_input_size = 0
    rpu_config.mapping.max_output_size = 0
    return rpu_config


def fit(model, optimizer, data_file: str, batch: int, epochs: int, train_limit: int = 0, seed: int = 0,
        on_epoch=None):
    """Plain SGD epochs over the exported data (shuffled by a seeded generator), printing test accuracy;
    ``on_epoch(epoch)`` after each."""
    data = torch.load(data_file)
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    if train_limit:
        xtr, ytr = xtr[:train_limit], ytr[:train_limit]
    order = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        started, loss_sum, correct = time.perf_counter(), 0.0, 0
        model.train()
        for idx in torch.randperm(len(ytr), generator=order).split(batch):
            out = model(xtr[idx])
            loss = F.nll_loss(out, ytr[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == ytr[idx]).sum().item()
        model.eval()
        with torch.no_grad():
            hits = sum((model(x).argmax(1) == y).sum().item() for x, y in zip(xte.split(1000), yte.split(1000)))
        print(f"epoch {epoch}: train loss {loss_sum / len(ytr):.4f} acc {100 * correct / len(ytr):.2f} %  "
              f"test acc {100 * hits / len(yte):.2f} %  ({time.perf_counter() - started:.0f} s)", flush=True)
        if on_epoch:
            on_epoch(epoch)
