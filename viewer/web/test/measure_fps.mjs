// Frame rate of the viewer page in headless Chromium: requestAnimationFrame callbacks per second, playing and paused.
// Usage: node test/measure_fps.mjs --url URL [--seconds 10] [--size 640x480] [--chromium /usr/bin/chromium]
// Prints one JSON line: {renderer, numSplats, loadSeconds, playingFps, pausedFps}.
import { chromium } from "playwright-core";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const url = arg("url");
const seconds = Number(arg("seconds", "10"));
const [width, height] = arg("size", "640x480").split("x").map(Number);
const exe = arg("chromium", process.env.CHROMIUM || "/usr/bin/chromium");
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
];
const profile = await mkdtemp(join(tmpdir(), "l4d-fps-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: exe, headless: true, args: FLAGS, viewport: { width, height },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const t0 = Date.now();
  await page.goto(`${url}?play=1`, { waitUntil: "load" });
  await page.waitForFunction(() => window.l4d && (window.l4d.ready || window.l4d.error), null, { timeout: 600000 });
  const err = await page.evaluate(() => window.l4d.error);
  if (err) throw new Error(err);
  const loadSeconds = (Date.now() - t0) / 1000;
  const rate = async () => {
    const a = await page.evaluate(() => [window.l4d.frames, performance.now()]);
    await page.waitForTimeout(seconds * 1000);
    const b = await page.evaluate(() => [window.l4d.frames, performance.now()]);
    return (1000 * (b[0] - a[0])) / (b[1] - a[1]);
  };
  await page.waitForTimeout(1000); // first frames compile the shaders
  const playingFps = await rate();
  await page.evaluate(() => window.l4d.pause());
  await page.waitForTimeout(500);
  const pausedFps = await rate();
  const renderer = await page.evaluate(() => {
    const gl = document.createElement("canvas").getContext("webgl2");
    const ext = gl && gl.getExtension("WEBGL_debug_renderer_info");
    return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : "unknown";
  });
  const numSplats = await page.evaluate(() => window.l4d.numSplats);
  console.log(JSON.stringify({ renderer, numSplats, width, height, loadSeconds, playingFps, pausedFps }));
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
