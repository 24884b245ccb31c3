"""Adaptive density control of 3DGS, with the Adam state kept consistent.

Parameters live in a dict name -> leaf tensor (first dimension N, one row per Gaussian); the optimizer is a
torch.optim.Adam whose param groups each hold one of them and carry its name ("name" key). Pruning, appending
and resetting rows replace the tensors in the dict and in the optimizer and slice / extend / zero the Adam moments
to match. Any extra per-Gaussian parameter (e.g. the 4D stage's deformation coefficients) follows along: clones
and split children copy their parent's rows.

The parameter names this module interprets: means (N, 3), log_scales (N, 3), quats (N, 4), opacity_logits (N,).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import logits_of, opacity_from_logits
from .projection import quat_to_rotmat


# ---------------------------------------------------------------------------------------------------------------
# optimizer bookkeeping


def _group(optimizer: torch.optim.Optimizer, name: str) -> dict | None:
    for g in optimizer.param_groups:
        if g.get("name") == name:
            return g
    return None


def _swap(optimizer: torch.optim.Optimizer, name: str, old: torch.Tensor, new: torch.Tensor, edit_state) -> None:
    """Put `new` in place of `old` in the group `name`, transforming its Adam state tensors with edit_state."""
    group = _group(optimizer, name)
    if group is None:
        return
    state = optimizer.state.pop(old, None)
    group["params"][0] = new
    if state:
        for k in ("exp_avg", "exp_avg_sq"):
            if k in state:
                state[k] = edit_state(state[k])
        optimizer.state[new] = state


def prune_params(
    optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor], keep: torch.Tensor  # (N,) bool
) -> dict[str, torch.Tensor]:
    """Keep the rows where `keep` is true in every parameter and its Adam moments."""
    out = {}
    for name, p in params.items():
        new = p.detach()[keep].requires_grad_(p.requires_grad)
        _swap(optimizer, name, p, new, lambda s: s[keep])
        out[name] = new
    return out


def append_params(
    optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor], extra: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Append rows (extra[name] (M, ...)) to every parameter; the new rows start with zero Adam moments."""
    out = {}
    for name, p in params.items():
        rows = extra[name].detach().to(p.dtype)
        new = torch.cat([p.detach(), rows], dim=0).requires_grad_(p.requires_grad)
        _swap(optimizer, name, p, new, lambda s, r=rows: torch.cat([s, torch.zeros_like(r)], dim=0))
        out[name] = new
    return out


def reset_param(
    optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor], name: str, value: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Replace one parameter's values and zero its Adam moments (3DGS opacity reset)."""
    out = dict(params)
    p = params[name]
    new = value.detach().to(p.dtype).clone().requires_grad_(p.requires_grad)
    _swap(optimizer, name, p, new, torch.zeros_like)
    out[name] = new
    return out


# ---------------------------------------------------------------------------------------------------------------
# statistics


@dataclass
class DensifyStats:
    """Running per-Gaussian statistics between two densification steps."""

    grad_accum: torch.Tensor  # (N,) sum of |screen-space gradient| (NDC units) over the views that saw it
    count: torch.Tensor  # (N,) number of those views
    max_radii: torch.Tensor  # (N,) largest screen radius seen (pixels)

    @staticmethod
    def zeros(n: int, device: torch.device | str = "cpu") -> "DensifyStats":
        z = torch.zeros(n, device=device)
        return DensifyStats(z.clone(), z.clone(), z.clone())

    def update(self, means2d_grad: torch.Tensor, radii: torch.Tensor, width: int, height: int) -> None:
        """means2d_grad (N, 2) dL/d(pixel position); radii (N,). The gradient is converted to NDC units as 3DGS
        thresholds it (d pixel / d ndc = 0.5 * size), so densify_grad_threshold keeps its 3DGS meaning."""
        vis = radii > 0
        g = means2d_grad.detach()
        g = torch.stack([g[:, 0] * (0.5 * width), g[:, 1] * (0.5 * height)], dim=-1).norm(dim=-1)
        self.grad_accum += torch.where(vis, g, torch.zeros_like(g))
        self.count += vis.to(self.count.dtype)
        self.max_radii = torch.where(vis, torch.maximum(self.max_radii, radii.to(self.max_radii.dtype)),
                                     self.max_radii)

    def mean_grad(self) -> torch.Tensor:
        return self.grad_accum / self.count.clamp_min(1)


# ---------------------------------------------------------------------------------------------------------------
# densification


@dataclass
class DensifyResult:
    params: dict[str, torch.Tensor]
    cloned: int
    split: int
    pruned: int


def densify_and_prune(
    optimizer: torch.optim.Optimizer,
    params: dict[str, torch.Tensor],
    stats: DensifyStats,
    *,
    grad_threshold: float,
    extent: float,
    percent_dense: float = 0.01,
    prune_opacity: float = 0.005,
    max_screen_radius: float | None = None,
    max_world_scale: float | None = None,
    max_gaussians: int | None = None,
    generator: torch.Generator | None = None,
) -> DensifyResult:
    """One 3DGS densification step.

    - clone: mean gradient >= grad_threshold and largest scale <= percent_dense * extent -> an exact copy;
    - split: mean gradient >= grad_threshold and largest scale > percent_dense * extent -> 2 children sampled
      from the Gaussian, scales / 1.6, the parent removed;
    - prune: opacity < prune_opacity, or (when given) max screen radius > max_screen_radius, or largest scale >
      max_world_scale * extent.
    With max_gaussians, the candidates with the largest gradients are taken first so that the count after the
    step stays within the cap (pruning is applied too). Returns the new parameters (stats must be reset by the
    caller, e.g. DensifyStats.zeros(new N)).
    """
    means, log_scales = params["means"], params["log_scales"]
    n = means.shape[0]
    with torch.no_grad():
        grads = stats.mean_grad()
        big = log_scales.exp().amax(dim=1) > percent_dense * extent
        cand = grads >= grad_threshold
        clone = cand & ~big
        split = cand & big
        if max_gaussians is not None:
            budget = max(0, int(max_gaussians) - n)  # each clone or split adds one Gaussian
            total = int(clone.sum() + split.sum())
            if total > budget:
                score = torch.where(cand, grads, torch.full_like(grads, -1.0))
                top = torch.topk(score, budget).indices if budget > 0 else torch.zeros(0, dtype=torch.long,
                                                                                        device=grads.device)
                chosen = torch.zeros_like(cand)
                chosen[top] = True
                clone &= chosen
                split &= chosen

        # clones: copies of every parameter row
        extra = {k: v.detach()[clone] for k, v in params.items()}
        # split children: 2 per parent
        idx = torch.nonzero(split, as_tuple=False).squeeze(1).repeat(2)
        if idx.numel():
            s = log_scales.detach()[idx].exp()
            noise = torch.randn(idx.numel(), 3, device=means.device, dtype=means.dtype, generator=generator) * s
            rot = quat_to_rotmat(params["quats"].detach()[idx])
            children = {k: v.detach()[idx] for k, v in params.items()}
            children["means"] = means.detach()[idx] + (rot @ noise.unsqueeze(-1)).squeeze(-1)
            children["log_scales"] = torch.log(s / 1.6)
            extra = {k: torch.cat([extra[k], children[k]], dim=0) for k in params}
        n_clone, n_split = int(clone.sum()), int(split.sum())
        new_params = append_params(optimizer, params, extra)

        # prune: split parents + transparent (+ too large)
        m = new_params["means"].shape[0]
        remove = torch.zeros(m, dtype=torch.bool, device=means.device)
        remove[:n] = split
        opac = opacity_from_logits(new_params["opacity_logits"].detach())
        low = opac < prune_opacity
        if max_screen_radius is not None:
            radii = torch.cat([stats.max_radii, torch.zeros(m - n, device=means.device)])
            low |= radii > max_screen_radius
        if max_world_scale is not None:
            low |= new_params["log_scales"].detach().exp().amax(dim=1) > max_world_scale * extent
        remove |= low
        if bool(remove.all()):  # never prune everything
            remove[torch.argmax(opac)] = False
        new_params = prune_params(optimizer, new_params, ~remove)
    return DensifyResult(new_params, n_clone, n_split, int(remove.sum()) - n_split)


def reset_opacities(
    optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor], ceiling: float = 0.01
) -> dict[str, torch.Tensor]:
    """3DGS opacity reset: opacity = min(opacity, ceiling), Adam moments of the opacities zeroed."""
    logits = params["opacity_logits"].detach()
    value = torch.minimum(logits, logits_of(torch.tensor(ceiling, dtype=logits.dtype, device=logits.device)))
    return reset_param(optimizer, params, "opacity_logits", value)
