// Loading the web scene written by landscape4d.viewer.bake: scene.json (header) + scene.bin (arrays).
//
// The binary holds, one after the other (offsets and element counts are in header.buffers), each Gaussian once
// (N = header.num_gaussians, the M = header.num_moving moving ones first):
//   centers f32 (N, 3)  centres at t = 0 (OpenCV world: x right, y down, z forward)
//   scales  f32 (N, 3)  linear standard deviations
//   quats   f32 (N, 4)  unit quaternions, x y z w
//   rgba    u8  (N, 4)  colour (SH degree 0: DC * C0 + 0.5) and opacity min(1, 1.5 sigmoid(logit))
//   motion  f32 (M, 4 * texelsPerMoving)  per moving Gaussian: see deform.js
// The page draws header.num_splats = N + M splats (each moving Gaussian at two phases): see splatSource.

const TYPES = { f32: Float32Array, u8: Uint8Array };

export async function loadScene(baseUrl) {
  const res = await fetch(new URL("scene.json", baseUrl));
  if (!res.ok) throw new Error(`scene.json: HTTP ${res.status}`);
  const header = await res.json();
  if (header.format !== "landscape4d-web-scene") throw new Error("scene.json: not a landscape4d web scene");
  const binRes = await fetch(new URL(header.data_file, baseUrl));
  if (!binRes.ok) throw new Error(`${header.data_file}: HTTP ${binRes.status}`);
  const bin = await binRes.arrayBuffer();
  const arrays = {};
  for (const b of header.buffers) {
    const Type = TYPES[b.dtype];
    if (!Type) throw new Error(`scene.json: unknown dtype ${b.dtype}`);
    if (b.offset + b.count * Type.BYTES_PER_ELEMENT > bin.byteLength) {
      throw new Error(`${header.data_file}: truncated (buffer ${b.name})`);
    }
    arrays[b.name] = new Type(bin, b.offset, b.count);
  }
  return { header, ...arrays };
}

// The Gaussian each page splat shows: splats 0..M-1 and M..2M-1 are the moving Gaussians 0..M-1 (phase 0, then
// phase 1), splats 2M..N+M-1 are the static Gaussians M..N-1 (the order of landscape4d.viewer.bake.page_order).
export function splatSource(k, numMoving) {
  return k < 2 * numMoving ? k % numMoving : k - numMoving;
}
