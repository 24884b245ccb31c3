// landscape4d annotate: paint the moving region of a photo, drag hint arrows, watch the live preview, save labelme.
//
// Page state for scripts and tests is on window.l4dAnnotate: ready, error, tool, state (the server's /state.json),
// arrows() (photo pixels, speed applied), preview (request/receive/draw counts), saves, lastSave (the server's
// answer), setTool(name), save(), undo(), redo().

import { Annotation } from "./annotate_model.js";
import { Preview } from "./annotate_preview.js";

const api = (window.l4dAnnotate = { ready: false, error: null, tool: "brush", saves: 0, lastSave: null });
const $ = (id) => document.getElementById(id);

function setStatus(text, error = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${url}`));
    img.src = url;
  });
}

async function postJSON(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

// the canvas's CSS size: the largest that fits its pane at the photo's aspect
function fitCanvas(canvas, pane, aspect) {
  const W = pane.clientWidth;
  const H = pane.clientHeight;
  let w = W;
  let h = W / aspect;
  if (h > H) {
    h = H;
    w = H * aspect;
  }
  canvas.style.width = `${Math.max(1, Math.floor(w))}px`;
  canvas.style.height = `${Math.max(1, Math.floor(h))}px`;
}

function drawArrow(g, [x0, y0], [x1, y1], width) {
  const len = Math.hypot(x1 - x0, y1 - y0);
  const head = Math.min(len * 0.45, width * 5);
  const a = Math.atan2(y1 - y0, x1 - x0);
  const path = () => {
    g.beginPath();
    g.moveTo(x0, y0);
    g.lineTo(x1, y1);
    g.moveTo(x1 - head * Math.cos(a - 0.45), y1 - head * Math.sin(a - 0.45));
    g.lineTo(x1, y1);
    g.lineTo(x1 - head * Math.cos(a + 0.45), y1 - head * Math.sin(a + 0.45));
  };
  g.lineCap = g.lineJoin = "round";
  g.strokeStyle = "rgba(0,0,0,0.75)";
  g.lineWidth = width * 2.2;
  path();
  g.stroke();
  g.strokeStyle = "#ffd21f";
  g.lineWidth = width;
  path();
  g.stroke();
  g.fillStyle = "#ffd21f";
  g.beginPath();
  g.arc(x0, y0, width * 1.3, 0, 2 * Math.PI);
  g.fill();
}

class Editor {
  constructor(state, photo) {
    this.state = state;
    this.photo = photo;
    this.canvas = $("canvas");
    this.canvas.width = state.displayWidth;
    this.canvas.height = state.displayHeight;
    this.g = this.canvas.getContext("2d");
    this.ann = new Annotation(state.displayWidth, state.displayHeight, state.imageWidth, state.imageHeight);
    this.tool = "brush";
    this.drag = null; // the pointer action in progress
    this.poly = []; // polygon corners (display pixels) being placed
    this.cursor = null;
    this.dirty = true;
    this.savedVersion = 0;
    this.lineWidth = Math.max(2, state.displayWidth / 400);
  }

  // pointer position in display pixels
  point(e) {
    const r = this.canvas.getBoundingClientRect();
    const c = this.canvas;
    return [((e.clientX - r.left) * c.width) / r.width, ((e.clientY - r.top) * c.height) / r.height];
  }

  cssToDisplay() {
    return this.canvas.width / this.canvas.getBoundingClientRect().width;
  }

  get radius() {
    return Number($("size").value) / 2;
  }

  changed() {
    this.dirty = true;
    this.updateButtons();
    this.onChange();
  }

  updateButtons() {
    $("undo").disabled = !this.ann.undoStack.length;
    $("redo").disabled = !this.ann.redoStack.length;
    $("speed").value = String(this.ann.speedLog);
    const k = this.ann.speed;
    const v = this.ann.meanSpeed(this.state.hintFrames);
    $("speed-value").textContent = `×${k.toFixed(2)}` + (v ? ` (${v.toFixed(2)} px/frame)` : "");
    const saved = this.ann.version !== this.savedVersion ? "unsaved changes"
      : api.saves || this.state.hasMask ? `saved in ${this.state.out}` : `will be saved in ${this.state.out}`;
    $("info").textContent = `${this.state.photo} ${this.state.imageWidth}×${this.state.imageHeight} · ` +
      `${this.ann.arrows.length} arrow(s) · ${saved}`;
  }

  setTool(name) {
    this.tool = api.tool = name;
    this.poly = [];
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === name);
    this.dirty = true;
  }

  // -- pointer --------------------------------------------------------------------------------------------------
  down(e) {
    if (e.button !== 0) return;
    const p = this.point(e);
    this.canvas.setPointerCapture(e.pointerId);
    if (this.tool === "brush" || this.tool === "erase") {
      this.ann.begin();
      this.drag = { kind: "brush", last: p };
      this.paint(p, p);
    } else if (this.tool === "arrow") {
      this.drag = { kind: "arrow", start: p, end: p };
    } else if (this.tool === "polygon") {
      this.polygonClick(p);
    }
    this.dirty = true;
  }

  move(e) {
    const p = this.point(e);
    this.cursor = p;
    if (this.drag?.kind === "brush") {
      this.paint(this.drag.last, p);
      this.drag.last = p;
    } else if (this.drag?.kind === "arrow") {
      this.drag.end = p;
    }
    this.dirty = true;
  }

  up(e) {
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    if (d.kind === "brush") {
      this.changed();
    } else if (d.kind === "arrow") {
      const end = this.point(e);
      if (Math.hypot(end[0] - d.start[0], end[1] - d.start[1]) >= 3) {
        this.ann.begin();
        this.ann.addArrow(this.ann.toPhoto(...d.start), this.ann.toPhoto(...end));
        this.changed();
      }
    }
    this.dirty = true;
  }

  paint(a, b) {
    const erase = this.tool === "erase";
    const r = this.radius * this.cssToDisplay();
    this.ann.stroke(a[0], a[1], b[0], b[1], r, erase);
    if (erase) this.ann.eraseArrowsNear(b[0], b[1], r);
  }

  polygonClick(p) {
    const near = 10 * this.cssToDisplay();
    if (this.poly.length >= 3 && Math.hypot(p[0] - this.poly[0][0], p[1] - this.poly[0][1]) <= near) {
      this.closePolygon();
    } else {
      this.poly.push(p);
    }
  }

  closePolygon() {
    if (this.poly.length >= 3) {
      this.ann.begin();
      this.ann.fillPolygon(this.poly);
      this.changed();
    }
    this.poly = [];
    this.dirty = true;
  }

  // -- drawing --------------------------------------------------------------------------------------------------
  render() {
    if (!this.dirty) return;
    this.dirty = false;
    const g = this.g;
    g.globalAlpha = 1;
    g.drawImage(this.photo, 0, 0, this.canvas.width, this.canvas.height);
    g.globalAlpha = 0.45;
    g.drawImage(this.ann.mask, 0, 0);
    g.globalAlpha = 1;
    for (const [x0, y0, x1, y1] of this.ann.effectiveArrows()) {
      drawArrow(g, this.ann.toDisplay(x0, y0), this.ann.toDisplay(x1, y1), this.lineWidth);
    }
    if (this.drag?.kind === "arrow") drawArrow(g, this.drag.start, this.drag.end, this.lineWidth);
    this.renderPolygon(g);
    if (this.cursor && (this.tool === "brush" || this.tool === "erase")) {
      g.strokeStyle = this.tool === "erase" ? "#8cf" : "#fff";
      g.lineWidth = Math.max(1, this.cssToDisplay());
      g.beginPath();
      g.arc(this.cursor[0], this.cursor[1], this.radius * this.cssToDisplay(), 0, 2 * Math.PI);
      g.stroke();
    }
  }

  renderPolygon(g) {
    if (!this.poly.length) return;
    const pts = this.cursor ? [...this.poly, this.cursor] : this.poly;
    g.strokeStyle = "#fff";
    g.lineWidth = Math.max(1, this.lineWidth / 2);
    g.beginPath();
    pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.stroke();
    g.fillStyle = "#fff";
    for (const [x, y] of this.poly) g.fillRect(x - 2, y - 2, 4, 4);
  }
}

function bindControls(ed, preview) {
  const c = ed.canvas;
  c.addEventListener("pointerdown", (e) => ed.down(e));
  c.addEventListener("pointermove", (e) => ed.move(e));
  c.addEventListener("pointerup", (e) => ed.up(e));
  c.addEventListener("pointercancel", (e) => ed.up(e));
  c.addEventListener("pointerleave", () => ((ed.cursor = null), (ed.dirty = true)));
  c.addEventListener("dblclick", () => ed.tool === "polygon" && (ed.poly.pop(), ed.closePolygon()));
  for (const b of document.querySelectorAll("[data-tool]")) {
    b.addEventListener("click", () => ed.setTool(b.dataset.tool));
  }
  $("undo").addEventListener("click", () => ed.ann.undo() && ed.changed());
  $("redo").addEventListener("click", () => ed.ann.redo() && ed.changed());
  $("clear").addEventListener("click", () => {
    ed.ann.begin();
    ed.ann.clearMask();
    ed.ann.arrows = [];
    ed.changed();
  });
  const speed = $("speed");
  speed.addEventListener("pointerdown", () => ed.ann.begin());
  speed.addEventListener("keydown", () => ed.ann.begin());
  speed.addEventListener("input", () => (ed.ann.setSpeedLog(Number(speed.value)), ed.changed()));
  $("save").addEventListener("click", () => save(ed));
  $("close").addEventListener("click", () => close(ed));
  window.addEventListener("keydown", (e) => key(e, ed));
  const refit = () => {
    fitCanvas(c, $("draw-pane"), c.width / c.height);
    fitCanvas(preview.canvas, $("preview-pane"), c.width / c.height);
    ed.dirty = true;
  };
  window.addEventListener("resize", refit);
  refit();
}

function key(e, ed) {
  if (e.target instanceof HTMLInputElement && e.target.type !== "range") return;
  const k = e.key.toLowerCase();
  const mod = e.ctrlKey || e.metaKey;
  if (mod && k === "z") (e.shiftKey ? ed.ann.redo() : ed.ann.undo()) && ed.changed();
  else if (mod && k === "y") ed.ann.redo() && ed.changed();
  else if (mod && k === "s") save(ed);
  else if (mod) return;
  else if (k === "b") ed.setTool("brush");
  else if (k === "e") ed.setTool("erase");
  else if (k === "p") ed.setTool("polygon");
  else if (k === "a") ed.setTool("arrow");
  else if (k === "enter") ed.closePolygon();
  else if (k === "escape") (ed.poly = []), (ed.dirty = true);
  else if (k === "backspace" && ed.poly.length) ed.poly.pop(), (ed.dirty = true);
  else if (k === "[" || k === "]") $("size").value = String(Number($("size").value) * (k === "[" ? 0.8 : 1.25));
  else return;
  e.preventDefault();
}

async function save(ed) {
  const version = ed.ann.version;
  setStatus("Saving…");
  try {
    const res = await postJSON("save", { mask: ed.ann.maskDataURL(), maskChanged: ed.ann.maskChanged,
                                         arrows: ed.ann.effectiveArrows() });
    ed.savedVersion = version;
    api.saves++;
    api.lastSave = res;
    setStatus(`Saved ${res.json} (${res.polygons} polygon(s), ${res.hints} hint(s), ` +
              `${(100 * res.moving).toFixed(0)}% moving) and ${res.mask}`);
  } catch (e) {
    setStatus(`Save failed: ${e.message}`, true);
  }
  ed.updateButtons();
}

async function close(ed) {
  if (ed.ann.version !== ed.savedVersion && !window.confirm("Close without saving the changes?")) return;
  await postJSON("close", {}).catch(() => null);
  api.closed = true;
  setStatus("The annotate command has stopped; this tab can be closed.");
  for (const b of document.querySelectorAll("button, input")) b.disabled = true;
}

async function start() {
  const state = await (await fetch("state.json")).json();
  const [photo, mask] = await Promise.all([loadImage("photo.jpg"), state.hasMask ? loadImage("mask.png") : null]);
  const ed = new Editor(state, photo);
  if (mask) ed.ann.loadMaskImage(mask);
  ed.ann.arrows = state.arrows.map((a) => a.slice());
  ed.ann.version = 0;
  const preview = new Preview($("preview"), $("preview-status"),
    { width: state.previewWidth, height: state.previewHeight, fps: state.fps },
    () => ({ mask: ed.ann.maskDataURL(), arrows: ed.ann.effectiveArrows() }));
  preview.showStill(photo);
  ed.onChange = () => preview.request();
  bindControls(ed, preview);
  ed.setTool("brush");
  ed.updateButtons();
  Object.assign(api, { state, editor: ed, preview: preview.stats, arrows: () => ed.ann.effectiveArrows(),
                       setTool: (t) => ed.setTool(t), save: () => save(ed), undo: () => ed.ann.undo() && ed.changed(),
                       redo: () => ed.ann.redo() && ed.changed() });
  const loop = (now) => {
    ed.render();
    preview.draw(now);
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  if (state.hasMask || state.arrows.length) preview.request();
  setStatus(`Paint the moving region, drag arrows for its motion, then Save (${state.out}).`);
  api.ready = true;
}

start().catch((e) => {
  api.error = e.message;
  setStatus(`Error: ${e.message}`, true);
});
