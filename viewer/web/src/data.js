// Loading the web scene written by landscape4d.viewer.bake: scene.json (header) + scene.bin (arrays).
//
// The binary holds, one after the other (offsets and element counts are in header.buffers):
//   centers f32 (N, 3)  splat centres at t = 0 of their own phase (OpenCV world: x right, y down, z forward)
//   scales  f32 (N, 3)  linear standard deviations
//   quats   f32 (N, 4)  unit quaternions, x y z w
//   rgba    u8  (N, 4)  colour (SH degree 0: DC * C0 + 0.5) and opacity sigmoid(logit)
//   motion  f32 (M, 4 * texelsPerMoving)  per moving splat (the first M splats): see deform.js

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
