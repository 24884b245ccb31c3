// The input camera in three.js terms.
//
// landscape4d uses OpenCV axes (x right, y down, z forward) with the world = the input camera. three.js cameras
// look down -z with y up, so the splats sit under a group rotated 180 degrees about x: (x, y, z) -> (x, -y, -z).
// A three.js camera at the origin with the identity orientation then sees exactly the input view.

import * as THREE from "three";

// Projection matrix of pinhole intrinsics (pixels) for an image of w x h, OpenGL clip space, near/far planes.
// u = fx * X / Z + cx in OpenCV terms becomes x_ndc = 2 fx / w * x / -z + (2 cx / w - 1) in three.js terms.
export function intrinsicsProjection({ fl_x, fl_y, cx, cy, w, h }, near, far) {
  const m = new THREE.Matrix4();
  const a = -(far + near) / (far - near);
  const b = (-2 * far * near) / (far - near);
  // prettier-ignore
  m.set(
    2 * fl_x / w, 0, 1 - 2 * cx / w, 0,
    0, 2 * fl_y / h, 2 * cy / h - 1, 0,
    0, 0, a, b,
    0, 0, -1, 0,
  );
  return m;
}

// A PerspectiveCamera whose projection always comes from the intrinsics (OrbitControls and resizes keep it).
export class IntrinsicsCamera extends THREE.PerspectiveCamera {
  constructor(intrinsics, near, far) {
    const fovY = THREE.MathUtils.radToDeg(2 * Math.atan(intrinsics.h / (2 * intrinsics.fl_y)));
    super(fovY, intrinsics.w / intrinsics.h, near, far);
    this.intrinsics = intrinsics;
    this.updateProjectionMatrix();
  }

  updateProjectionMatrix() {
    if (!this.intrinsics) {
      super.updateProjectionMatrix();
      return;
    }
    this.projectionMatrix.copy(intrinsicsProjection(this.intrinsics, this.near, this.far));
    this.projectionMatrixInverse.copy(this.projectionMatrix).invert();
  }
}

// The OpenCV -> three.js frame change, as a quaternion for the group holding the splats.
export function openCvToThree() {
  return new THREE.Quaternion(1, 0, 0, 0);
}
