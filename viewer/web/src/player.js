// Playback of one loop: loop time t in [0, 1) advances by fps / numFrames per second while playing.
// With looping off, playback stops on the last frame of the loop, (numFrames - 1) / numFrames.

const SLIDER_STEPS = 1000;

export class Player {
  constructor({ numFrames, fps, slider, label, playButton, loopBox }) {
    this.numFrames = Math.max(1, numFrames);
    this.fps = fps > 0 ? fps : 30;
    this.t = 0;
    this.playing = false;
    this.slider = slider;
    this.label = label;
    this.playButton = playButton;
    this.loopBox = loopBox;
    this.loop = loopBox ? loopBox.checked : true;
    this.dragging = false; // while the scrubber is held, playback does not move its thumb
    slider.max = String(SLIDER_STEPS);
    slider.addEventListener("input", () => this.setTime(Number(slider.value) / SLIDER_STEPS));
    slider.addEventListener("pointerdown", () => (this.dragging = true));
    window.addEventListener("pointerup", () => (this.dragging = false));
    playButton.addEventListener("click", () => this.toggle());
    if (loopBox) loopBox.addEventListener("change", () => (this.loop = loopBox.checked));
    this.show();
  }

  get lastTime() {
    return (this.numFrames - 1) / this.numFrames;
  }

  setTime(t) {
    const x = Number.isFinite(t) ? t : 0;
    this.t = ((x % 1) + 1) % 1;
    this.show();
  }

  play() {
    if (!this.loop && this.t >= this.lastTime) this.t = 0;
    this.playing = true;
    this.show();
  }

  pause() {
    this.playing = false;
    this.show();
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  // dt: seconds since the previous frame
  advance(dt) {
    if (!this.playing) return;
    const next = this.t + (Math.min(Math.max(dt, 0), 0.25) * this.fps) / this.numFrames;
    if (next >= 1 && !this.loop) {
      this.t = this.lastTime;
      this.playing = false;
    } else {
      this.t = next % 1;
    }
    this.show();
  }

  show() {
    if (!this.dragging) this.slider.value = String(Math.round(this.t * SLIDER_STEPS));
    this.label.textContent = `frame ${Math.floor(this.t * this.numFrames + 1e-6) + 1} / ${this.numFrames}`;
    this.playButton.textContent = this.playing ? "Pause" : "Play";
  }
}
