"""4D Gaussians: per-Gaussian periodic deformation on top of the refined 3D motion, trained on animated views."""

from .model import GaussiansAt, Scene4D, gaussians_at
from .motion_init import assign_point_motion, build_scene4d
from .scene_file import load_scene4d, save_scene4d

__all__ = ["GaussiansAt", "Scene4D", "gaussians_at", "assign_point_motion", "build_scene4d", "load_scene4d",
           "save_scene4d"]
