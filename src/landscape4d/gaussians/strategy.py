"""Adaptive density control as a strategy object with hooks around each training step (after gsplat's `Strategy`
objects: `initialize_state`, `step_pre_backward`, `step_post_backward`). The training loop calls

    state = strategy.initialize_state(num_gaussians, device)
    for step ...:
        for each rendered view:  loss.backward();  strategy.step_post_backward(state, step, out, width, height)
        optimizer.step()
        params = strategy.step_post_update(optimizer, params, state, step)   # densify / prune / reset

and the strategy does the rest with the Adam-consistent helpers of densify.py: screen-space gradient statistics
between densification steps, clone / split / prune every `densify_every` steps from `densify_from` until
`densify_until`, and the 3DGS opacity reset every `opacity_reset_every` steps (radius and size pruning start after
the first reset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import GaussiansConfig
from .densify import DensifyStats, densify_and_prune, reset_opacities
from .types import RasterOutput


@dataclass
class StrategyState:
    """What the strategy carries from step to step."""

    stats: DensifyStats  # per-Gaussian gradient statistics since the last densification
    resets: int = 0  # opacity resets so far
    log: list[dict] = field(default_factory=list)  # one entry per densification: iter, cloned, split, pruned, num


@dataclass
class DensifyStrategy:
    """3DGS adaptive density control (clone small / split large Gaussians with large screen-space gradients, prune
    transparent and, after the first opacity reset, oversized ones)."""

    extent: float  # scene scale of the size thresholds (train.scene_extent)
    densify_from: int = 500
    densify_until: int = 15_000
    densify_every: int = 100
    grad_threshold: float = 2e-4
    percent_dense: float = 0.01
    prune_opacity: float = 0.005
    prune_screen_radius: float = 20.0
    prune_world_scale: float = 0.1
    max_gaussians: int | None = None
    opacity_reset_every: int = 3000
    generator: torch.Generator | None = None  # split children's positions are sampled with it

    @classmethod
    def from_config(cls, cfg: GaussiansConfig, extent: float, generator: torch.Generator | None = None
                    ) -> "DensifyStrategy":
        return cls(extent, cfg.densify_from, cfg.densify_until, cfg.densify_every, cfg.densify_grad_threshold,
                   cfg.percent_dense, cfg.prune_opacity, cfg.prune_screen_radius, cfg.prune_world_scale,
                   cfg.max_gaussians, cfg.opacity_reset_every, generator)

    def initialize_state(self, n: int, device: torch.device | str = "cpu") -> StrategyState:
        return StrategyState(DensifyStats.zeros(n, device))

    def step_pre_backward(self, state: StrategyState, step: int, out: RasterOutput) -> None:
        """Nothing to do: the rasterizers keep the gradient of `out.means2d` themselves."""

    def step_post_backward(self, state: StrategyState, step: int, out: RasterOutput, width: int, height: int) -> None:
        """After the backward pass of one rendered view: accumulate its screen-space gradients (while densifying)."""
        if step < self.densify_until and out.means2d.grad is not None:
            state.stats.update(out.means2d.grad, out.radii, width, height)

    def densifies_at(self, step: int) -> bool:
        return self.densify_from <= step < self.densify_until and step % self.densify_every == 0

    def resets_at(self, step: int) -> bool:
        return step < self.densify_until and self.opacity_reset_every > 0 and step % self.opacity_reset_every == 0

    def step_post_update(self, optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor],
                         state: StrategyState, step: int) -> dict[str, torch.Tensor]:
        """After the optimizer step: densify and prune, then reset opacities, at their steps. Returns the (new)
        parameters; the optimizer's groups and Adam moments follow them."""
        if self.densifies_at(step):
            params = self.densify(optimizer, params, state, step)
        if self.resets_at(step):
            params = reset_opacities(optimizer, params)
            state.resets += 1
        return params

    def densify(self, optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor], state: StrategyState,
                step: int) -> dict[str, torch.Tensor]:
        after_reset = state.resets > 0
        res = densify_and_prune(
            optimizer, params, state.stats,
            grad_threshold=self.grad_threshold,
            extent=self.extent,
            percent_dense=self.percent_dense,
            prune_opacity=self.prune_opacity,
            max_screen_radius=self.prune_screen_radius if after_reset else None,
            max_world_scale=self.prune_world_scale if after_reset else None,
            max_gaussians=self.max_gaussians,
            generator=self.generator,
        )
        n = int(res.params["means"].shape[0])
        state.stats = DensifyStats.zeros(n, res.params["means"].device)
        state.log.append({"iter": step, "cloned": res.cloned, "split": res.split, "pruned": res.pruned, "num": n})
        return res.params
