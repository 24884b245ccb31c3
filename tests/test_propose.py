"""The motion proposal of a run without --mask (landscape4d.motion.propose and its hook in inputs.py): sky and water
against the synthetic scenes' known masks, no water on grass or a dirt road, the run folder's proposal files, and
the error paths (--mask none, a photo with neither sky nor water)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landscape4d.cli import main
from landscape4d.config import DepthConfig, preset
from landscape4d.errors import InputError
from landscape4d.evaluation.scenes import FALL, WATER
from landscape4d.evaluation.synthetic import generate_scene
from landscape4d.inputs import prepare_input, write_input
from landscape4d.io.masks import load_motion_input
from landscape4d.motion.propose import ProposeConfig, propose_motion, segment_water

ORFD = Path(__file__).resolve().parents[2] / "shared" / "samples" / "outdoor-depth-orfd" / "rgb"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture(scope="module")
def scenes() -> dict[str, dict]:
    """River and lake scenes (256 x 144) with their known sky and water masks."""
    out = {}
    for kind in ("river", "lake"):
        s = generate_scene(kind, seed=0, width=256, height=144)
        material = s.renderer.render(np.eye(4), 0.0).material.reshape(s.image.shape[:2])
        out[kind] = {"image": s.image, "sky": s.sky, "water": (material == WATER) | (material == FALL)}
    return out


@pytest.mark.parametrize("kind, sky_min, water_min", [("river", 0.75, 0.9), ("lake", 0.75, 0.85)])
def test_proposal_matches_known_masks(scenes, kind, sky_min, water_min):
    sc = scenes[kind]
    prop = propose_motion(sc["image"], DepthConfig())
    regions = {r.name: r for r in prop.regions}
    assert set(regions) == {"sky", "water"}
    sky_iou, water_iou = iou(regions["sky"].mask, sc["sky"]), iou(regions["water"].mask, sc["water"])
    print(f"\n{kind}: sky IoU {sky_iou:.3f}, water IoU {water_iou:.3f} ({prop.describe()})")
    assert sky_iou > sky_min and water_iou > water_min
    # the sky drifts right; the water flows along its course (these channels run across the picture)
    assert regions["sky"].velocity[0] > 0 and regions["sky"].velocity[1] == 0
    vx, vy = regions["water"].velocity
    assert abs(vx) > 3 * abs(vy)
    # arrows inside the region, as long as its motion over hint_frames
    for r in prop.regions:
        x, y = r.arrows[:, 0].T
        assert r.mask[y.astype(int), x.astype(int)].all()
        lengths = np.linalg.norm(r.arrows[:, 1] - r.arrows[:, 0], axis=1)
        np.testing.assert_allclose(lengths, np.hypot(*r.velocity) * prop.hint_frames, rtol=1e-6)


def test_no_water_on_grass(scenes):
    """The grass in front of the river (rows below the water), alone: no water."""
    sc = scenes["river"]
    rows = np.nonzero(sc["water"].any(axis=1))[0]
    grass = sc["image"][rows.max() + 2:]
    assert grass.shape[0] >= 10
    assert not segment_water(grass, np.zeros(grass.shape[:2], bool), ProposeConfig()).any()


@pytest.mark.parametrize("name", ["1623721491895", "1623721492790"])
def test_no_water_on_a_dirt_road(name):
    path = ORFD / f"{name}.png"
    if not path.exists():
        pytest.skip("../shared/samples/outdoor-depth-orfd is not available")
    image = np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255
    prop = propose_motion(image, DepthConfig())
    assert "water" not in [r.name for r in prop.regions], prop.describe()


def test_real_sample_proposes_sky_and_sea(sample_dir):
    image = np.asarray(Image.open(sample_dir / "image.jpg").convert("RGB")).astype(np.float32) / 255
    prop = propose_motion(image, DepthConfig())
    regions = {r.name: r for r in prop.regions}
    print(f"\ncinemagraphy-demo1: {prop.describe(384 / image.shape[1])}")
    assert set(regions) == {"sky", "water"}
    # the hand-drawn mask of the sample marks parts of the sea: the proposed water covers most of it
    hand = np.asarray(Image.open(sample_dir / "mask.png").convert("L")) > 127
    covered = (regions["water"].mask & hand).sum() / hand.sum()
    top_quarter = regions["sky"].mask[: image.shape[0] // 4].mean()
    print(f"hand mask covered by the proposed water: {covered:.2f}; sky in the top quarter: {top_quarter:.2f}")
    assert covered > 0.7 and top_quarter > 0.7


# ------------------------------------------------------------------------------------------ inputs and the CLI


def _save(path: Path, image: np.ndarray) -> Path:
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def test_prepare_input_proposes_and_saves(scenes, tmp_path, capsys):
    photo = _save(tmp_path / "river.png", scenes["river"]["image"])
    cfg = preset("preview")
    inp = prepare_input(photo, None, None, cfg, require_motion=True)
    assert inp.proposal is not None and inp.motion.mask.any() and len(inp.motion.arrows) >= 2
    run = tmp_path / "run"
    write_input(run, inp)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "no --mask: proposed sky" in ln]
    assert len(lines) == 1 and "water" in lines[0] and str(run / "input" / "proposal.json") in lines[0]
    # the saved proposal reads back (as --mask) to the run's own mask and hints, at the photo's size
    back = load_motion_input(run / "input" / "proposal.json", 256, 144).resized(*inp.size)
    np.testing.assert_array_equal(back.mask, inp.motion.mask)
    np.testing.assert_allclose(back.arrows, inp.motion.arrows, atol=0.01)
    png = np.asarray(Image.open(run / "input" / "proposal_mask.png")) > 0
    np.testing.assert_array_equal(png, load_motion_input(run / "input" / "proposal.json", 256, 144).mask)
    doc = json.loads((run / "input" / "proposal.json").read_text())
    assert (run / "input" / doc["imagePath"]).resolve() == photo.resolve()
    meta = json.loads((run / "input" / "input.json").read_text())
    assert [r["name"] for r in meta["proposal"]["regions"]] == ["sky", "water"]


def test_user_direction_overrides_proposed_hints(scenes, tmp_path):
    photo = _save(tmp_path / "river.png", scenes["river"]["image"])
    cfg = preset("preview")
    cfg.motion.direction = (0.0, 1.0)
    inp = prepare_input(photo, None, None, cfg, require_motion=True)
    assert inp.motion.mask.any() and len(inp.motion.arrows) == 0 and inp.motion.direction == (0.0, 1.0)


def test_mask_none_keeps_the_error(scenes, tmp_path):
    photo = _save(tmp_path / "river.png", scenes["river"]["image"])
    with pytest.raises(InputError, match="motion mask is empty"):
        prepare_input(photo, "none", None, preset("preview"), require_motion=True)


def test_nothing_to_animate_exit_2(tmp_path, capsys):
    """A photo with neither sky nor water (grass texture): one line, exit 2, suggesting annotate, no run folder."""
    rng = np.random.default_rng(0)
    grass = np.stack([0.25 + 0.1 * rng.random((90, 120)), 0.45 + 0.15 * rng.random((90, 120)),
                      np.full((90, 120), 0.15)], -1)
    photo = _save(tmp_path / "grass.png", grass)
    run = tmp_path / "run"
    code = main(["motion", str(photo), "-o", str(run)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("landscape4d: error")]
    assert code == 2 and len(lines) == 1 and str(photo) in lines[0]
    assert f"landscape4d annotate {photo}" in lines[0] and "Traceback" not in err
    assert not run.exists()


def test_run_without_mask_animates_the_proposal(scenes, tmp_path, capsys):
    """`motion PHOTO -o RUN` with no mask: the proposal is printed, saved, and drives the motion stage."""
    photo = _save(tmp_path / "lake.png", scenes["lake"]["image"])
    run = tmp_path / "run"
    code = main(["motion", str(photo), "-o", str(run), "--size", "96", "--num-views", "2", "--set",
                 "motion.refine_iters=5"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "no --mask: proposed sky" in err and (run / "input" / "proposal.json").exists()
    mask = np.asarray(Image.open(run / "input" / "mask.png")) > 127
    m0 = np.load(run / "motion" / "input_motion.npy")  # (h, w, 2) px/frame
    assert mask.mean() > 0.2 and (np.linalg.norm(m0, axis=-1) > 0).mean() > 0.2
    sky_rows = slice(0, mask.shape[0] // 8)  # the top of the lake scene is sky: it drifts right
    assert (m0[sky_rows, :, 0][mask[sky_rows]] > 0).all()
