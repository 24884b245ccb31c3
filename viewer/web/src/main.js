// landscape4d web viewer: plays a looping 4D Gaussian scene with Spark (three.js Gaussian splatting).
//
// Page state for scripts and tests is on window.l4d: ready, error, t (loop time in [0, 1)), playing, loop,
// frames (requestAnimationFrame callbacks so far), fps (measured over the last second), numSplats,
// setTime(t), play(), pause().
// URL parameters: ?play=0 starts paused; ?t=0.25 starts at that loop time; ?scene=URL loads another scene folder;
// ?deform=0 shows the splats without the motion (debugging).

import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { ExtSplats, SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

import { IntrinsicsCamera, openCvToThree } from "./camera.js";
import { loadScene, splatSource } from "./data.js";
import { makeDeformModifier } from "./deform.js";
import { Player } from "./player.js";

const state = (window.l4d = { ready: false, error: null, t: 0, playing: false, loop: true, frames: 0, fps: 0 });

function showError(message) {
  state.error = message;
  const el = document.getElementById("status");
  el.textContent = `Error: ${message}`;
  el.classList.add("error");
}

// Encode the splats with Spark's own encoder (pushSplat), then hand the arrays to a fresh ExtSplats: built from
// extArrays it uploads its textures (float32 centres, half-float colour and log-scales). Each moving Gaussian is
// pushed twice (its phase-0 and phase-1 splats; the deformation tells them apart by index).
function buildSplats(data) {
  const n = data.header.num_splats;
  const m = data.header.num_moving;
  const c = new THREE.Vector3();
  const s = new THREE.Vector3();
  const q = new THREE.Quaternion();
  const col = new THREE.Color();
  const enc = new ExtSplats({ maxSplats: n });
  enc.ensureSplats(n);
  const { centers, scales, quats, rgba } = data;
  for (let k = 0; k < n; k++) {
    const i = splatSource(k, m);
    c.set(centers[3 * i], centers[3 * i + 1], centers[3 * i + 2]);
    s.set(scales[3 * i], scales[3 * i + 1], scales[3 * i + 2]);
    q.set(quats[4 * i], quats[4 * i + 1], quats[4 * i + 2], quats[4 * i + 3]);
    col.setRGB(rgba[4 * i] / 255, rgba[4 * i + 1] / 255, rgba[4 * i + 2] / 255); // as stored (no colour management)
    enc.pushSplat(c, s, q, rgba[4 * i + 3] / 255, col);
  }
  return new ExtSplats({ extArrays: enc.extArrays, numSplats: n });
}

function fitCanvas(renderer, aspect, camera) {
  const W = window.innerWidth;
  const H = window.innerHeight - document.getElementById("controls").offsetHeight;
  let w = W;
  let h = Math.round(W / aspect);
  if (h > H) {
    h = H;
    w = Math.round(H * aspect);
  }
  renderer.setSize(Math.max(1, w), Math.max(1, h));
  camera.updateProjectionMatrix();
}

async function main() {
  const params = new URLSearchParams(window.location.search);
  const base = new URL(params.get("scene") ?? "scene/", window.location.href);
  const data = await loadScene(base);
  const head = data.header;
  const depth = head.scene_depth;

  const renderer = new THREE.WebGLRenderer({ antialias: false, canvas: document.getElementById("canvas") });
  renderer.setPixelRatio(1);
  renderer.setClearColor(0x000000, 1);
  const scene = new THREE.Scene();
  const camera = new IntrinsicsCamera(head.camera, 0.01 * depth, 1000 * depth);
  const spark = new SparkRenderer({ renderer });
  scene.add(spark);

  const world = new THREE.Group(); // OpenCV world frame
  world.quaternion.copy(openCvToThree());
  scene.add(world);

  const deform = makeDeformModifier({
    motion: data.motion, numMoving: head.num_moving, order: head.fourier_order,
    texelsPerMoving: head.texels_per_moving, extentFade: head.extent_fade,
  });
  const splats = buildSplats(data);
  await splats.initialized;
  const mesh = new SplatMesh(params.get("deform") === "0" ? { extSplats: splats } : { extSplats: splats, objectModifier: deform.modifier });
  await mesh.initialized;
  world.add(mesh);

  const controls = new OrbitControls(camera, renderer.domElement);
  const home = () => {
    camera.position.set(0, 0, 0);
    camera.up.set(0, 1, 0);
    controls.target.set(0, 0, -depth); // a point straight ahead at the scene depth
    controls.update();
  };
  controls.enableDamping = false;
  controls.rotateSpeed = 0.4;
  // the scene is made from one photo: keep the orbit within 45 degrees of the input view
  controls.minAzimuthAngle = -Math.PI / 4;
  controls.maxAzimuthAngle = Math.PI / 4;
  controls.minPolarAngle = Math.PI / 4;
  controls.maxPolarAngle = (3 * Math.PI) / 4;
  controls.minDistance = 0.02 * depth;
  controls.maxDistance = 20 * depth;
  home();

  const player = new Player({
    numFrames: head.num_frames, fps: head.fps, slider: document.getElementById("time"),
    label: document.getElementById("frame"), playButton: document.getElementById("play"),
    loopBox: document.getElementById("loop"),
  });
  if (params.has("t")) player.setTime(Number(params.get("t")));
  if (params.get("play") !== "0") player.play();
  document.getElementById("reset").addEventListener("click", home);
  window.addEventListener("keydown", (e) => {
    if (e.code === "Space" && e.target === document.body) {
      e.preventDefault();
      player.toggle();
    }
  });

  const aspect = head.camera.w / head.camera.h;
  fitCanvas(renderer, aspect, camera);
  window.addEventListener("resize", () => fitCanvas(renderer, aspect, camera));

  Object.assign(state, {
    numSplats: head.num_splats, numMoving: head.num_moving, numFrames: head.num_frames,
    setTime: (t) => player.setTime(t), play: () => player.play(), pause: () => player.pause(),
  });

  const fpsLabel = document.getElementById("fps");
  let last = performance.now();
  let windowStart = last;
  let windowFrames = 0;
  let shownTau = -1;
  renderer.setAnimationLoop((now) => {
    player.advance((now - last) / 1000);
    last = now;
    const tau = player.t;
    if (tau !== shownTau) {
      deform.tau.value = tau;
      mesh.updateVersion();
      shownTau = tau;
    }
    Object.assign(state, { t: tau, playing: player.playing, loop: player.loop });
    controls.update();
    const r0 = performance.now();
    renderer.render(scene, camera);
    state.renderMs = performance.now() - r0; // CPU time of the render call (GPU work may finish later)
    state.frames += 1;
    windowFrames += 1;
    if (now - windowStart >= 1000) {
      state.fps = (1000 * windowFrames) / (now - windowStart);
      fpsLabel.textContent = `${state.fps.toFixed(1)} fps`;
      windowStart = now;
      windowFrames = 0;
    }
  });
  document.getElementById("status").textContent =
    `${head.num_gaussians.toLocaleString()} Gaussians (${head.num_moving.toLocaleString()} moving, drawn twice)`;
  state.ready = true;
}

main().catch((e) => showError(e && e.message ? e.message : String(e)));
