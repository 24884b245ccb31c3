// Drive the annotate page in headless Chromium (playwright-core) with real pointer events, as a person would.
//
// Usage: node test/annotate_check.mjs --url http://127.0.0.1:PORT/ --plan PLAN.json --out DIR
//                                     [--chromium /usr/bin/chromium] [--size 1200x700]
// PLAN.json: {"actions": [...], "save": true, "close": false, "wait_preview": true, "screenshot": "page.png",
//             "quality": 80}
// actions, coordinates in photo pixels (mapped to the screen through the drawing canvas's box on the page):
//   {"tool": "brush" | "erase", "size": CSS_PX, "points": [[x, y], ...]}   a drag through the points
//   {"tool": "polygon", "points": [[x, y], ...]}                            clicks, then a click on the first corner
//   {"tool": "arrow", "from": [x, y], "to": [x, y]}                         a drag
//   {"undo": n} | {"redo": n} | {"speed": v}                                buttons / the speed slider (log2 factor)
// Writes DIR/preview_a.png and DIR/preview_b.png (the preview canvas at two moments of the loop), DIR/<screenshot>
// (the whole page, .png or .jpg) and DIR/result.json: {ok, error, state, box, arrows, preview, frames: [a, b],
// lastSave, console}.
import { chromium } from "playwright-core";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const url = arg("url");
const out = arg("out", "annotate-check");
const exe = arg("chromium", process.env.CHROMIUM || "/usr/bin/chromium");
const [width, height] = arg("size", "1200x700").split("x").map(Number);
if (!url || !arg("plan")) {
  console.error("usage: node test/annotate_check.mjs --url URL --plan PLAN.json --out DIR");
  process.exit(2);
}
const plan = JSON.parse(await readFile(arg("plan"), "utf8"));
await mkdir(out, { recursive: true });

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const result = { ok: false, error: null, console: [] };

async function run(page) {
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => window.l4dAnnotate && (window.l4dAnnotate.ready || window.l4dAnnotate.error),
    null, { timeout: 60000 });
  const err = await page.evaluate(() => window.l4dAnnotate.error);
  if (err) throw new Error(`page error: ${err}`);
  result.state = await page.evaluate(() => window.l4dAnnotate.state);
  const box = await page.locator("#canvas").boundingBox();
  result.box = box;
  const { imageWidth: W, imageHeight: H } = result.state;
  const screen = ([x, y]) => [box.x + (x * box.width) / W, box.y + (y * box.height) / H];
  const m = page.mouse;
  for (const a of plan.actions || []) {
    if (a.tool) await page.locator(`[data-tool="${a.tool}"]`).click();
    if (a.size) await page.locator("#size").fill(String(a.size));
    if (a.tool === "brush" || a.tool === "erase") {
      const pts = a.points.map(screen);
      await m.move(...pts[0]);
      await m.down();
      for (const p of pts.slice(1)) await m.move(...p, { steps: 8 });
      await m.up();
    } else if (a.tool === "polygon") {
      for (const p of [...a.points, a.points[0]].map(screen)) await m.click(...p);
    } else if (a.tool === "arrow") {
      await m.move(...screen(a.from));
      await m.down();
      await m.move(...screen(a.to), { steps: 6 });
      await m.up();
    } else if (a.undo || a.redo) {
      for (let i = 0; i < (a.undo || a.redo); i++) await page.locator(a.undo ? "#undo" : "#redo").click();
    } else if (a.speed !== undefined) {
      await page.locator("#speed").fill(String(a.speed));
    }
  }
  result.arrows = await page.evaluate(() => window.l4dAnnotate.arrows());
  if (plan.wait_preview !== false) await waitPreview(page);
  result.preview = await page.evaluate(() => ({ ...window.l4dAnnotate.preview }));
  if (plan.save) {
    await page.locator("#save").click();
    await page.waitForFunction(() => window.l4dAnnotate.saves > 0 || /failed/.test(
      document.getElementById("status").textContent), null, { timeout: 30000 });
    result.lastSave = await page.evaluate(() => window.l4dAnnotate.lastSave);
    result.status = await page.locator("#status").textContent();
  }
  if (plan.screenshot) {
    const jpeg = /\.jpe?g$/.test(plan.screenshot);
    await page.screenshot({ path: join(out, plan.screenshot), type: jpeg ? "jpeg" : "png",
                            ...(jpeg ? { quality: plan.quality || 80 } : {}) });
  }
  if (plan.close) {
    await page.locator("#close").click();
    await page.waitForFunction(() => window.l4dAnnotate.closed, null, { timeout: 10000 });
  }
}

// two moments of the playing preview, at different frames of the loop
async function waitPreview(page) {
  await page.waitForFunction(() => {
    const p = window.l4dAnnotate.preview;
    return !p.busy && p.received + p.errors > 0;
  }, null, { timeout: 90000, polling: 50 });
  const ok = await page.evaluate(() => {
    const p = window.l4dAnnotate.preview;
    return p.received > 0 && !p.lastError;
  });
  if (!ok) return;
  const canvas = page.locator("#preview");
  const frameA = await page.evaluate(() => window.l4dAnnotate.preview.frameIndex);
  await canvas.screenshot({ path: join(out, "preview_a.png") });
  const n = result.state.frames;
  await page.waitForFunction(([f, n]) => {
    const d = Math.abs(window.l4dAnnotate.preview.frameIndex - f);
    return Math.min(d, n - d) >= n / 5;
  }, [frameA, n], { timeout: 30000, polling: 20 });
  const frameB = await page.evaluate(() => window.l4dAnnotate.preview.frameIndex);
  await canvas.screenshot({ path: join(out, "preview_b.png") });
  result.frames = [frameA, frameB];
}

let context;
try {
  context = await chromium.launchPersistentContext(join(out, "profile"), {
    executablePath: exe, headless: true, args: FLAGS, viewport: { width, height },
    ignoreDefaultArgs: ["--headless=new"],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => result.console.push(`${msg.type()}: ${msg.text()}`.slice(0, 500)));
  page.on("pageerror", (e) => result.console.push(`pageerror: ${e.message}`.slice(0, 500)));
  page.on("dialog", (d) => d.accept());
  await run(page);
  result.ok = true;
} catch (e) {
  result.error = String(e && e.message ? e.message : e).slice(0, 2000);
} finally {
  if (context) await context.close().catch((e) => result.console.push(`close: ${e.message}`.slice(0, 300)));
  await writeFile(join(out, "result.json"), JSON.stringify(result, null, 2));
}
console.log(JSON.stringify({ ok: result.ok, error: result.error }));
process.exit(result.ok ? 0 : 1);
