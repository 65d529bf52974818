"""How big a fusion network is: parameters, and floating-point operations per window.

The model card and `wellmon compare` report both, so that a user choosing an architecture
sees what it costs besides what it scores. FLOPs are counted by torch's `FlopCounterMode`
on one window (batch 1, every step and context slot filled), which counts matrix products
as 2·M·N·K and leaves elementwise work out. It does not see inside `nn.LSTM` (its CPU
kernel is opaque to the counter), so each LSTM's products are added from its shape:
2 · 4H · (I + H) a step, a direction and a layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from wellmon.models.training.network import ExpertHeads, example_inputs


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def flops_per_window(net: ExpertHeads) -> int:
    """Floating-point operations of one forward pass on one window (module doc)."""
    inputs = example_inputs(1, k_past=net.k_past, dim=net.dim)
    inputs = tuple(torch.ones_like(x) if x.dtype == torch.bool else x for x in inputs)
    lstm_flops = 0

    def count_lstm(module: nn.LSTM, args: tuple[torch.Tensor, ...], _output: object) -> None:
        nonlocal lstm_flops
        steps = args[0].shape[1] if module.batch_first else args[0].shape[0]
        hidden, directions = module.hidden_size, 2 if module.bidirectional else 1
        width = module.input_size
        for _ in range(module.num_layers):
            lstm_flops += 2 * 4 * hidden * (width + hidden) * steps * directions
            width = hidden * directions

    hooks = [m.register_forward_hook(count_lstm) for m in net.modules()
             if isinstance(m, nn.LSTM)]
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net.eval()(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return int(counter.get_total_flops()) + lstm_flops
