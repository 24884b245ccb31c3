// The annotation being edited: the mask (a canvas at the display size, alpha = moving), the hint arrows (photo
// pixels, before the speed factor), the speed factor, and the undo/redo history.
//
// Coordinates: "display" pixels are the mask canvas's (dw x dh); "photo" pixels are the photo's (W x H); both are
// continuous, x right, y down, pixel (i, j) covering [j, j + 1) x [i, i + 1).

const MASK_RGB = [255, 72, 72];
const HISTORY = 40;

export class Annotation {
  constructor(displayWidth, displayHeight, imageWidth, imageHeight) {
    this.dw = displayWidth;
    this.dh = displayHeight;
    this.W = imageWidth;
    this.H = imageHeight;
    this.mask = document.createElement("canvas");
    this.mask.width = displayWidth;
    this.mask.height = displayHeight;
    this.ctx = this.mask.getContext("2d", { willReadFrequently: true });
    this.arrows = []; // [x0, y0, x1, y1] photo pixels, length before the speed factor
    this.speedLog = 0; // speed factor = 2 ** speedLog
    this.maskChanged = false; // the mask differs from the one loaded (else the file's polygons are kept)
    this.version = 0;
    this.undoStack = [];
    this.redoStack = [];
  }

  get speed() {
    return 2 ** this.speedLog;
  }

  toPhoto(x, y) {
    return [(x * this.W) / this.dw, (y * this.H) / this.dh];
  }

  toDisplay(x, y) {
    return [(x * this.dw) / this.W, (y * this.dh) / this.H];
  }

  // the arrows as saved and previewed: the speed factor applied to their lengths
  effectiveArrows() {
    const k = this.speed;
    return this.arrows.map(([x0, y0, x1, y1]) => [x0, y0, x0 + k * (x1 - x0), y0 + k * (y1 - y0)]);
  }

  // -- history ------------------------------------------------------------------------------------------------
  snapshot() {
    const data = this.ctx.getImageData(0, 0, this.dw, this.dh).data;
    const alpha = new Uint8Array(this.dw * this.dh);
    for (let i = 0; i < alpha.length; i++) alpha[i] = data[4 * i + 3];
    return { alpha, arrows: this.arrows.map((a) => a.slice()), speedLog: this.speedLog, maskChanged: this.maskChanged };
  }

  restore(s) {
    this.setAlpha(s.alpha);
    this.arrows = s.arrows.map((a) => a.slice());
    this.speedLog = s.speedLog;
    this.maskChanged = s.maskChanged;
    this.version++;
  }

  // call before every edit: the state before it goes on the undo stack
  begin() {
    this.undoStack.push(this.snapshot());
    if (this.undoStack.length > HISTORY) this.undoStack.shift();
    this.redoStack = [];
  }

  undo() {
    if (!this.undoStack.length) return false;
    this.redoStack.push(this.snapshot());
    this.restore(this.undoStack.pop());
    return true;
  }

  redo() {
    if (!this.redoStack.length) return false;
    this.undoStack.push(this.snapshot());
    this.restore(this.redoStack.pop());
    return true;
  }

  // -- mask -----------------------------------------------------------------------------------------------------
  setAlpha(alpha) {
    const img = this.ctx.createImageData(this.dw, this.dh);
    for (let i = 0; i < alpha.length; i++) {
      img.data[4 * i] = MASK_RGB[0];
      img.data[4 * i + 1] = MASK_RGB[1];
      img.data[4 * i + 2] = MASK_RGB[2];
      img.data[4 * i + 3] = alpha[i];
    }
    this.ctx.putImageData(img, 0, 0);
  }

  // a grey mask picture (white = moving) of the display size -> the mask
  loadMaskImage(image) {
    const c = document.createElement("canvas");
    c.width = this.dw;
    c.height = this.dh;
    const g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(image, 0, 0, this.dw, this.dh);
    const data = g.getImageData(0, 0, this.dw, this.dh).data;
    const alpha = new Uint8Array(this.dw * this.dh);
    for (let i = 0; i < alpha.length; i++) alpha[i] = data[4 * i] > 127 ? 255 : 0;
    this.setAlpha(alpha);
  }

  // a round-capped segment of the brush (display pixels), painting or erasing
  stroke(x0, y0, x1, y1, radius, erase) {
    const g = this.ctx;
    g.save();
    g.globalCompositeOperation = erase ? "destination-out" : "source-over";
    g.strokeStyle = g.fillStyle = `rgb(${MASK_RGB.join(",")})`;
    g.lineCap = g.lineJoin = "round";
    g.lineWidth = 2 * radius;
    g.beginPath();
    if (x0 === x1 && y0 === y1) {
      g.arc(x0, y0, radius, 0, 2 * Math.PI);
      g.fill();
    } else {
      g.moveTo(x0, y0);
      g.lineTo(x1, y1);
      g.stroke();
    }
    g.restore();
    this.maskChanged = true;
    this.version++;
  }

  fillPolygon(points) {
    const g = this.ctx;
    g.save();
    g.fillStyle = `rgb(${MASK_RGB.join(",")})`;
    g.beginPath();
    points.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.closePath();
    g.fill();
    g.restore();
    this.maskChanged = true;
    this.version++;
  }

  clearMask() {
    this.ctx.clearRect(0, 0, this.dw, this.dh);
    this.maskChanged = true;
    this.version++;
  }

  maskDataURL() {
    return this.mask.toDataURL("image/png");
  }

  // -- arrows ---------------------------------------------------------------------------------------------------
  // an arrow drawn from a to b (photo pixels) as it is shown, i.e. with the speed factor applied
  addArrow([x0, y0], [x1, y1]) {
    const k = this.speed;
    this.arrows.push([x0, y0, x0 + (x1 - x0) / k, y0 + (y1 - y0) / k]);
    this.version++;
  }

  // remove the arrows that start within `radius` display pixels of (x, y) (display pixels); -> how many
  eraseArrowsNear(x, y, radius) {
    const before = this.arrows.length;
    this.arrows = this.arrows.filter(([ax, ay]) => {
      const [dx, dy] = this.toDisplay(ax, ay);
      return Math.hypot(dx - x, dy - y) > radius;
    });
    if (this.arrows.length !== before) this.version++;
    return before - this.arrows.length;
  }

  setSpeedLog(v) {
    this.speedLog = v;
    this.version++;
  }

  // the mean arrow speed in photo pixels per frame (an arrow is the motion over `hintFrames` frames)
  meanSpeed(hintFrames) {
    const a = this.effectiveArrows();
    if (!a.length) return 0;
    return a.reduce((s, [x0, y0, x1, y1]) => s + Math.hypot(x1 - x0, y1 - y0), 0) / a.length / hintFrames;
  }
}
