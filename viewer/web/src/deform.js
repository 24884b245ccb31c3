// The 4D deformation evaluated per splat on the GPU, as a Spark dyno object modifier.
//
// It is the formula of landscape4d/dynamics/model.py (mirrored in numpy by landscape4d.viewer.bake.evaluate_web,
// which the Python tests compare with the training code). The page draws every moving Gaussian twice from its ONE
// motion record: splat i < M is moving Gaussian i at phase p = 0, splat M + i is the same Gaussian at p = 1 (one
// loop behind); splats >= 2M are static and unchanged. At loop time tau = t mod 1, for record r of a moving splat,
//   centre     = centre_r + vN_r * (tau - p) + sum_f basis_f(tau) * pos_f
//   quaternion = normalise(quat_r + sum_f basis_f(tau) * rot_f)      (rot_f pre-divided by |raw quat|)
//   scales     = scales_r * exp(sum_f basis_f(tau) * scale_f)
//   opacity    = 2 (1 - exp(-w * m * s_r))   with s_r = -log(1 - opacity_r / 2), w = cos^2(pi tau / 2) at p = 0
//                                             and 1 - cos^2(pi tau / 2) at p = 1, m = the extent weight of the
//                                             travel tau - p: 1 in [lo_r, hi_r], 0 one fade (1/16 loop) beyond
// basis = [sin(2 pi k tau), k = 1..F] + [cos(2 pi k tau), k = 1..F]. The phase-1 splat at tau -> 1 is exactly the
// phase-0 splat at tau = 0, so the loop closes whatever the parameters.
//
// Motion record of moving Gaussian r: texelsPerMoving = 2 + 5F RGBA32F texels starting at texel r * texelsPerMoving
// of a 4096-wide float texture; as floats: [vN.xyz, s, pos (2F x 3), rot (2F x 4, xyzw), scale (2F x 3), lo, hi,
// 0, 0].

import * as THREE from "three";
import { dyno } from "@sparkjsdev/spark";

export const MOTION_TEX_WIDTH = 4096;

export function motionTexture(motion, numMoving, texelsPerMoving) {
  const texels = Math.max(1, numMoving * texelsPerMoving);
  const height = Math.max(1, Math.ceil(texels / MOTION_TEX_WIDTH));
  const data = new Float32Array(MOTION_TEX_WIDTH * height * 4);
  data.set(motion.subarray(0, numMoving * texelsPerMoving * 4));
  const tex = new THREE.DataTexture(data, MOTION_TEX_WIDTH, height, THREE.RGBAFormat, THREE.FloatType);
  tex.minFilter = THREE.NearestFilter;
  tex.magFilter = THREE.NearestFilter;
  tex.generateMipmaps = false;
  tex.needsUpdate = true;
  return tex;
}

// GLSL statements of the modifier for Fourier order F (unrolled: constant indices only).
export function deformStatements({ g, out, tau, motion, numMoving, order, extentFade = 1 / 16 }) {
  const T = 2 + 5 * order;
  const F2 = 2 * order;
  const comp = "xyzw";
  const fl = (k) => `d${k >> 2}.${comp[k & 3]}`; // float k of the record
  const lines = [`${out} = ${g};`, `int i = ${g}.index;`, `if (i < ${2 * numMoving}) {`];
  lines.push(`  float ph = i < ${numMoving} ? 0.0 : 1.0;`);
  lines.push(`  int b = (i < ${numMoving} ? i : i - ${numMoving}) * ${T};`);
  for (let k = 0; k < T; k++) {
    lines.push(`  int p${k} = b + ${k};`);
    lines.push(`  vec4 d${k} = texelFetch(${motion}, ivec2(p${k} % ${MOTION_TEX_WIDTH}, p${k} / ${MOTION_TEX_WIDTH}), 0);`);
  }
  lines.push(`  float tau = ${tau};`);
  for (let f = 0; f < F2; f++) {
    const k = (f % order) + 1;
    lines.push(`  float w${f} = ${f < order ? "sin" : "cos"}(${(2 * Math.PI * k).toFixed(9)} * tau);`);
  }
  const sum = (base, dim) => {
    const terms = [];
    for (let f = 0; f < F2; f++) {
      const parts = [];
      for (let c = 0; c < dim; c++) parts.push(fl(base + f * dim + c));
      terms.push(`w${f} * vec${dim}(${parts.join(", ")})`);
    }
    return terms.length ? terms.join(" + ") : `vec${dim}(0.0)`;
  };
  lines.push(`  vec3 dpos = d0.xyz * (tau - ph) + ${sum(4, 3)};`);
  lines.push(`  vec4 dquat = ${sum(4 + 3 * F2, 4)};`);
  lines.push(`  vec3 dscale = ${sum(4 + 7 * F2, 3)};`);
  lines.push(`  ${out}.center = ${g}.center + dpos;`);
  lines.push(`  vec4 q = ${g}.quaternion + dquat;`);
  lines.push(`  ${out}.quaternion = q / max(length(q), 1e-12);`);
  lines.push(`  ${out}.scales = ${g}.scales * exp(dscale);`);
  lines.push(`  float c = cos(${(0.5 * Math.PI).toFixed(9)} * tau);`);
  lines.push(`  float w = ph > 0.5 ? 1.0 - c * c : c * c;`);
  const ext = `d${T - 1}`; // [lo, hi, 0, 0]
  lines.push(`  float s = tau - ph;`);
  lines.push(`  float m = clamp(1.0 + (s - ${ext}.x) / ${extentFade.toFixed(9)}, 0.0, 1.0) * ` +
             `clamp(1.0 + (${ext}.y - s) / ${extentFade.toFixed(9)}, 0.0, 1.0);`);
  lines.push(`  ${out}.rgba.a = 2.0 * (1.0 - exp(-w * m * d0.w));`);
  lines.push("}");
  return lines;
}

// The object modifier and the uniform that drives it: set tau.value in [0, 1) and call mesh.updateVersion().
export function makeDeformModifier({ motion, numMoving, order, texelsPerMoving, extentFade }) {
  const tau = dyno.dynoFloat(0.0);
  const tex = motionTexture(motion, numMoving, texelsPerMoving);
  const motionTex = dyno.dynoSampler2D(tex);
  const modifier = dyno.dynoBlock({ gsplat: dyno.Gsplat }, { gsplat: dyno.Gsplat }, ({ gsplat }) => {
    const deform = new dyno.Dyno({
      inTypes: { gsplat: dyno.Gsplat, tau: "float", motion: "sampler2D" },
      outTypes: { gsplat: dyno.Gsplat },
      inputs: { gsplat, tau, motion: motionTex },
      statements: ({ inputs, outputs }) =>
        deformStatements({
          g: inputs.gsplat, out: outputs.gsplat, tau: inputs.tau, motion: inputs.motion, numMoving, order,
          extentFade,
        }),
    });
    return { gsplat: deform.outputs.gsplat };
  });
  return { modifier, tau, texture: tex };
}
