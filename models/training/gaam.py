"""Multi-head Gaussian Adaptive Attention (GAAM), masked and ONNX-exportable.

Re-implements ``MultiHeadGaussianAdaptiveAttention`` from the paper authors' package
``gaussian-adaptive-attention`` 0.1.5 (Ioannides et al.) so that, with ``mask=None``, it
computes the same numbers, while adding a validity mask and avoiding the per-head Python
loop over data-dependent slices so that ``torch.onnx.export(dynamo=False)`` keeps the batch
and attention-axis lengths dynamic.

What the reference computes, for each head h (a contiguous chunk of the *attention axis*;
chunk length ``L // H``, the last head also takes the remainder) and the chunk's values x:

    mean = mean(x),  var = unbiased_var(x) + eps                 (along the axis, per head)
    g_i  = exp(-((x - (mean + offset_i)) / sqrt(var))^2 / (2 c_i^2)) / sqrt(2 pi c_i^2)
    w    = prod_i g_i,   w = w / clamp(sum(w), min=eps)           (sum along the axis chunk)
    out  = x * w

with learnable ``mean_offsets`` (init 0) and ``scales`` (the reference's ``c``, init
standard normal), one of each per head and Gaussian. Note the reference splits the
attention axis itself into heads, not the feature axis; this module does the same.

Deliberate differences (only reachable with a mask or degenerate lengths):

* ``mask`` ([batch, time], True = valid) replaces the reference's ``padding_value``: mean,
  variance and the weight normaliser use valid elements only, masked values never reach
  any arithmetic, and masked outputs and weights are exactly zero (the reference pads with
  zeros inside its statistics and passes padded inputs through unchanged).
* A head with fewer than two valid elements gets ``var = eps`` instead of NaN.
* ``eps`` is honoured; the reference's multi-head wrapper passes its ``eps`` to an unused
  argument, so its heads always use 1e-8 (the default here).
* The weights are returned without ``detach`` so they can take part in a loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MultiHeadGaussianAdaptiveAttention(nn.Module):
    """Re-weights each element by a learnable Gaussian of its standardised value.

    ``norm_axis`` is the axis attended over (statistics, normalisation and head split);
    the default 1 is time for ``[batch, time, features]`` input.
    """

    def __init__(self, num_heads: int, num_gaussians: int = 1, norm_axis: int = 1,
                 eps: float = 1e-8) -> None:
        super().__init__()
        if not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError("num_heads must be a positive integer")
        if not isinstance(num_gaussians, int) or num_gaussians <= 0:
            raise ValueError("num_gaussians must be a positive integer")
        self.num_heads = num_heads
        self.num_gaussians = num_gaussians
        self.norm_axis = norm_axis
        self.eps = eps
        self.mean_offsets = nn.Parameter(torch.zeros(num_heads, num_gaussians))
        self.scales = nn.Parameter(torch.randn(num_heads, num_gaussians))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x * weights, weights)``, both shaped like ``x``.

        ``mask`` is boolean ``[batch, time]`` over the first two axes of ``x``.
        """
        if x.dim() < 2:
            raise ValueError(f"x must have at least 2 dimensions, got {x.dim()}")
        axis = self.norm_axis if self.norm_axis >= 0 else self.norm_axis + x.dim()
        if not 0 <= axis < x.dim():
            raise ValueError(f"norm_axis {self.norm_axis} out of range for {x.dim()}-d input")
        if not torch.jit.is_tracing() and x.shape[axis] < self.num_heads:
            raise ValueError(f"axis {axis} has length {x.shape[axis]} < {self.num_heads} heads")

        # Explicit non-negative permutations: the TorchScript exporter mis-handles movedim(-1).
        to_last = [d for d in range(x.dim()) if d != axis] + [axis]
        back = sorted(range(x.dim()), key=to_last.__getitem__)
        valid: torch.Tensor | None = None
        if mask is not None:
            if mask.dim() != 2:
                raise ValueError("mask must be [batch, time]")
            valid = mask.to(torch.bool).reshape(mask.shape + (1,) * (x.dim() - 2))
            valid = valid.expand_as(x).permute(to_last)
        xs = x.permute(to_last)  # [..., L]
        if valid is not None:
            xs = torch.where(valid, xs, torch.zeros_like(xs))
        vf = valid.to(xs.dtype) if valid is not None else torch.ones_like(xs)

        length = xs.shape[-1]
        pos = torch.arange(length, device=xs.device)
        chunk = torch.clamp(torch.div(length, self.num_heads, rounding_mode="floor"), min=1)
        head_of = torch.clamp(torch.div(pos, chunk, rounding_mode="floor"),
                              max=self.num_heads - 1)  # [L]
        heads = torch.arange(self.num_heads, device=xs.device)
        onehot = (head_of.unsqueeze(0) == heads.unsqueeze(1)).to(xs.dtype).transpose(0, 1)

        def per_head(t: torch.Tensor) -> torch.Tensor:
            """Sum ``t`` [..., L] within each head's chunk: [..., H]."""
            return torch.matmul(t, onehot)

        def spread(t: torch.Tensor) -> torch.Tensor:
            """Give every position its head's value: [..., H] -> [..., L]."""
            return torch.index_select(t, -1, head_of)

        count = per_head(vf)
        mean = spread(per_head(xs * vf) / torch.clamp(count, min=1.0))
        centred = (xs - mean) * vf
        var = spread(per_head(centred * centred) / torch.clamp(count - 1.0, min=1.0)) + self.eps
        std = torch.sqrt(var)

        weights = torch.ones_like(xs)
        for i in range(self.num_gaussians):
            offset = spread(self.mean_offsets[:, i])
            c = spread(self.scales[:, i])
            y = (xs - (mean + offset)) / std
            gauss = torch.exp(-((y ** 2) / (2.0 * (c ** 2)))) / torch.sqrt(2 * math.pi * (c ** 2))
            weights = weights * gauss
        weights = weights * vf
        weights = weights / spread(torch.clamp(per_head(weights), min=self.eps))
        out = xs * weights
        return out.permute(back), weights.permute(back)
