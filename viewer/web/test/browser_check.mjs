// Drive the viewer page in headless Chromium (playwright-core) and save what a person would see.
//
// Usage: node test/browser_check.mjs --url http://127.0.0.1:PORT/ --out DIR [--chromium /usr/bin/chromium]
//                                    [--fps-seconds 3] [--size 640x480]
// Writes DIR/t000.png (paused at t = 0), DIR/t050.png (after moving the time scrubber to the middle),
// DIR/play_a.png and DIR/play_b.png (two moments of the playing loop, >= 1/4 loop apart), DIR/orbit.png (after a
// mouse drag, still paused at play_b's time), DIR/reset.png (after "Input view"), and DIR/result.json:
// {ok, error, numSplats, fps (requestAnimationFrame callbacks per second while playing), console: [...]}.
import { chromium } from "playwright-core";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const url = arg("url");
const out = arg("out", "browser-check");
const exe = arg("chromium", process.env.CHROMIUM || "/usr/bin/chromium");
const fpsSeconds = Number(arg("fps-seconds", "3"));
const [width, height] = arg("size", "640x480").split("x").map(Number);
if (!url) {
  console.error("usage: node test/browser_check.mjs --url URL --out DIR");
  process.exit(2);
}
await mkdir(out, { recursive: true });

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
];
const result = { ok: false, error: null, console: [], timings: {} };
const t0 = Date.now();
const mark = (name) => (result.timings[name] = (Date.now() - t0) / 1000);
const userDataDir = join(out, "profile");
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: exe, headless: true, args: FLAGS, viewport: { width, height }, ignoreDefaultArgs: ["--headless=new"],
  });
  mark("launched");
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => result.console.push(`${m.type()}: ${m.text()}`.slice(0, 500)));
  page.on("pageerror", (e) => result.console.push(`pageerror: ${e.message}`.slice(0, 500)));
  await page.goto(`${url}?play=0&t=0`, { waitUntil: "load" });
  await page.waitForFunction(() => window.l4d && (window.l4d.ready || window.l4d.error), null, { timeout: 90000 });
  const err = await page.evaluate(() => window.l4d.error);
  if (err) throw new Error(`page error: ${err}`);
  result.numSplats = await page.evaluate(() => window.l4d.numSplats);
  mark("ready");

  // settle: a few frames so that the splat sort of the current view has landed
  const settle = async (n = 3, ms = 250) => {
    const f0 = await page.evaluate(() => window.l4d.frames);
    await page.waitForFunction((f) => window.l4d.frames >= f, f0 + n, { timeout: 60000 });
    await page.waitForTimeout(ms);
  };
  const shot = async (name) => {
    const box = await page.locator("#canvas").boundingBox(); // page screenshot clipped to the canvas (faster)
    await page.screenshot({ path: join(out, name), clip: box });
  };

  await settle();
  await shot("t000.png");
  mark("t000");
  await page.locator("#time").fill("500"); // the scrubber, as a person drags it
  await settle();
  result.tAfterScrub = await page.evaluate(() => window.l4d.t);
  await shot("t050.png");
  mark("t050");

  // play: the loop time advances by itself; measure the frame rate meanwhile
  await page.locator("#play").click();
  await settle(4, 200);
  const f0 = await page.evaluate(() => [window.l4d.frames, performance.now()]);
  await page.waitForTimeout(fpsSeconds * 1000);
  const f1 = await page.evaluate(() => [window.l4d.frames, performance.now()]);
  result.fps = (1000 * (f1[0] - f0[0])) / (f1[1] - f0[1]);
  result.pageFps = await page.evaluate(() => window.l4d.fps);
  result.playing = await page.evaluate(() => window.l4d.playing);
  mark("fps");
  // two moments of the playing loop, a quarter loop or more apart (paused for the screenshot itself)
  await page.evaluate(() => window.l4d.pause());
  await settle(3, 300);
  result.tPlayA = await page.evaluate(() => window.l4d.t);
  await shot("play_a.png");
  mark("play_a");
  await page.evaluate(() => window.l4d.play());
  await page.waitForFunction((ta) => {
    const d = Math.abs(window.l4d.t - ta) % 1;
    return Math.min(d, 1 - d) >= 0.25;
  }, result.tPlayA, { timeout: 60000, polling: 10 });
  await page.evaluate(() => window.l4d.pause());
  await settle(3, 300);
  result.tPlayB = await page.evaluate(() => window.l4d.t);
  await shot("play_b.png");
  mark("play_b");

  // orbit: drag across the canvas (paused, so only the camera changes), then back to the input view
  const box = await page.locator("#canvas").boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.75, box.y + box.height * 0.4, { steps: 2 });
  await page.mouse.up();
  await settle(3, 300);
  await shot("orbit.png");
  await page.locator("#reset").click();
  await settle(3, 300);
  await shot("reset.png");
  mark("orbit");
  result.renderer = await page.evaluate(() => {
    const gl = document.createElement("canvas").getContext("webgl2");
    const ext = gl && gl.getExtension("WEBGL_debug_renderer_info");
    return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl ? "webgl2" : "none";
  });
  result.ok = true;
} catch (e) {
  result.error = String(e && e.message ? e.message : e).slice(0, 2000);
} finally {
  if (context) await context.close().catch((e) => result.console.push(`close: ${e.message}`.slice(0, 300)));
  await writeFile(join(out, "result.json"), JSON.stringify(result, null, 2));
}
console.log(JSON.stringify({ ok: result.ok, error: result.error, fps: result.fps }));
process.exit(result.ok ? 0 : 1);
