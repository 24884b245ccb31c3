"""Stage render: dynamic videos of the 4D scene along every camera path."""

from __future__ import annotations

from ..gaussians.rasterize import resolve_backend
from ..pipeline import StageContext
from ..render import render_paths


def run(ctx: StageContext) -> dict:
    scene, header = ctx.artifacts.scene4d(ctx.device)
    backend = resolve_backend(ctx.cfg.gaussians.backend, ctx.device)
    return render_paths(scene, header, ctx.cfg.render, ctx.out, backend, ctx.progress)
