// The live preview: after each change (debounced), POST the mask and arrows to /preview; the server answers with
// the loop as one JPEG of frames stacked top to bottom (one every X-Frame-Pitch rows), which plays here at the
// loop's frame rate. One request is
// in flight at a time; changes made meanwhile are sent when it returns.

const DEBOUNCE_MS = 250;

export class Preview {
  constructor(canvas, statusEl, { width, height, fps }, payload) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    canvas.width = width;
    canvas.height = height;
    this.w = width;
    this.h = height;
    this.fps = fps;
    this.statusEl = statusEl;
    this.payload = payload; // () -> {mask, arrows}
    this.strip = null; // ImageBitmap (w x h * frames)
    this.frames = 0;
    this.still = null; // the photo, shown while there is no preview
    this.timer = null;
    this.inflight = false;
    this.pending = false;
    // busy: a change is waiting for its preview (debounce, request in flight, or another one queued)
    this.stats = { received: 0, errors: 0, lastError: null, seconds: null, frameIndex: -1, drawn: 0, requested: 0,
                   busy: false };
  }

  request() {
    clearTimeout(this.timer);
    this.stats.busy = true;
    this.timer = setTimeout(() => this.send(), DEBOUNCE_MS);
  }

  async send() {
    this.timer = null;
    if (this.inflight) {
      this.pending = true;
      return;
    }
    this.inflight = true;
    this.pending = false;
    this.stats.requested++;
    this.status("Preview: computing…");
    const t0 = performance.now();
    try {
      const res = await fetch("preview", { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(this.payload()) });
      if (!res.ok) {
        const err = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
        throw new Error(err.error || `HTTP ${res.status}`);
      }
      const frames = Number(res.headers.get("X-Frames"));
      this.pitch = Number(res.headers.get("X-Frame-Pitch")) || this.h;
      const bitmap = await createImageBitmap(await res.blob());
      if (this.strip) this.strip.close();
      this.strip = bitmap;
      this.frames = frames;
      this.stats.received++;
      this.stats.lastError = null;
      this.stats.seconds = (performance.now() - t0) / 1000;
      this.status(`Preview: ${frames} frames at ${this.w}×${this.h}, ready in ${this.stats.seconds.toFixed(1)} s`);
    } catch (e) {
      if (this.strip) this.strip.close();
      this.strip = null;
      this.stats.errors++;
      this.stats.lastError = e.message;
      this.status(`Preview: ${e.message}`, !/paint|drag/.test(e.message));
    } finally {
      this.inflight = false;
      if (this.pending) this.send();
      this.stats.busy = this.inflight || this.timer !== null;
    }
  }

  status(text, error = false) {
    this.statusEl.textContent = text;
    this.statusEl.classList.toggle("error", error);
  }

  // draw the frame of time `now` (ms); called every animation frame
  draw(now) {
    if (this.strip && this.frames > 0) {
      const i = Math.floor((now / 1000) * this.fps) % this.frames;
      if (i !== this.stats.frameIndex) {
        this.ctx.drawImage(this.strip, 0, i * this.pitch, this.w, this.h, 0, 0, this.w, this.h);
        this.stats.frameIndex = i;
        this.stats.drawn++;
      }
    } else if (this.still && this.stats.frameIndex !== -1) {
      this.ctx.drawImage(this.still, 0, 0, this.w, this.h);
      this.stats.frameIndex = -1;
    }
  }

  showStill(image) {
    this.still = image;
    this.ctx.drawImage(image, 0, 0, this.w, this.h);
  }
}
