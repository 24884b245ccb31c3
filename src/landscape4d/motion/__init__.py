"""Motion: hints -> dense 2D motion per view -> consistent 3D motion (the paper's 3D Motion Refinement Module).

Typical use (the pipeline stage wires these to the run folder):

    M0 = dense_motion_from_hints(mask, arrows, cfg)                        # input view, (H, W, 2) px/frame
    flows = per_view_motion(arrows, mask, depth, intr, views, cfg)          # independent per-view maps
    views = [ViewMotion(v.c2w, v.mask, v.depth, f) for v, f in zip(views, flows)]
    points = camera.unproject_depth(depth, intr)                           # (H*W, 3)
    v0 = lift_motion(flows[0], depth, intr)                                # (H*W, 3) world units / frame
    vel, info = refine_motion(points, mask.reshape(-1), v0, views, intr, cfg)
    before = multiview_consistency_epe(flows, views, depth, intr, mask)
    refined = flows_from_3d(points, vel, views, intr, mask.reshape(-1))   # the 3D motion seen in each view
    after = multiview_consistency_epe(refined, views, depth, intr, mask)

Units: 2D motion in pixels per frame, 3D motion in world units per frame. Conventions: `landscape4d.camera`.
"""

from .consistency import flows_from_3d, multiview_consistency_epe
from .estimators import load_motion_model, motion_from_video, read_video_frames
from .geometry import ViewMotion, project_points, sample_flow, visible_in_view
from .hints import HintConstraints, hint_constraints
from .interpolate import dense_motion_from_hints, laplace_interpolate, rbf_interpolate
from .lifting import lift_motion, project_motion, render_flow
from .per_view import lift_arrows, per_view_motion, project_arrows
from .refine import RefineInfo, refine_motion
from .visualize import flow_to_color, quiver_image

__all__ = [
    "HintConstraints",
    "RefineInfo",
    "ViewMotion",
    "dense_motion_from_hints",
    "flow_to_color",
    "flows_from_3d",
    "hint_constraints",
    "laplace_interpolate",
    "lift_arrows",
    "lift_motion",
    "load_motion_model",
    "motion_from_video",
    "multiview_consistency_epe",
    "per_view_motion",
    "project_arrows",
    "project_motion",
    "project_points",
    "quiver_image",
    "rbf_interpolate",
    "read_video_frames",
    "refine_motion",
    "render_flow",
    "sample_flow",
    "visible_in_view",
]
