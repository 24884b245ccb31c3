"""The output of every rasterizer backend."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RasterOutput:
    color: torch.Tensor  # (H, W, 3) composited colour, background included
    alpha: torch.Tensor  # (H, W, 1) accumulated opacity, 1 - final transmittance
    depth: torch.Tensor  # (H, W, 1) accumulated depth sum_i w_i z_i (not normalised: see expected_depth)
    means2d: torch.Tensor  # (N, 2) projected means; after backward, .grad is dL/d(pixel position)
    radii: torch.Tensor  # (N,) int32 screen radius in pixels, 0 = culled

    def expected_depth(self, eps: float = 1e-6) -> torch.Tensor:
        """Depth normalised by alpha (H, W, 1): sum_i w_i z_i / sum_i w_i; 0 where nothing was drawn."""
        a = self.alpha
        return torch.where(a > eps, self.depth / a.clamp_min(eps), torch.zeros_like(self.depth))

    @property
    def visible(self) -> torch.Tensor:
        """(N,) bool: Gaussians that were not culled."""
        return self.radii > 0
