"""Single-image animation: Eulerian motion integration and symmetric softmax splatting into a seamless loop.

Modules: `integrate` (motion -> displacement fields), `splat` (softmax splatting), `loop` (the looping
animation of one image), `metrics` (SSIM, loop seam).  The pipeline stage lives in `stage` (written separately).
"""

from .integrate import (grid_points, integrate_motion, integrate_motion_backward, integrate_motion_reference,
                        integrate_points)
from .loop import animate_image, animate_image_reference, resolve_device
from .metrics import LoopSeam, loop_seam_ssim, ssim, ssim_reference
from .splat import softmax_splat, softmax_splat_reference, softmax_weights, splat_accumulate, splat_importance

__all__ = [
    "LoopSeam", "animate_image", "animate_image_reference", "grid_points", "integrate_motion",
    "integrate_motion_backward", "integrate_motion_reference", "integrate_points", "loop_seam_ssim",
    "resolve_device", "softmax_splat", "softmax_splat_reference", "softmax_weights", "splat_accumulate",
    "splat_importance", "ssim", "ssim_reference",
]
