// Bundle the viewer with esbuild into src/landscape4d/viewer/static/: index.html, viewer.js, viewer.css, and
// THIRD_PARTY_LICENSES.txt (the licence files of the npm packages that went into the bundle); and the annotate page
// (annotate.html, annotate.js, annotate.css).
// Usage: node build.mjs [--outdir DIR]
import { build } from "esbuild";
import { copyFile, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf("--outdir");
const outdir = i > 0 ? resolve(process.argv[i + 1]) : resolve(here, "../../src/landscape4d/viewer/static");
await mkdir(outdir, { recursive: true });
const result = await build({
  entryPoints: [join(here, "src/main.js")],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "none",
  metafile: true,
  outfile: join(outdir, "viewer.js"),
  logLevel: "warning",
});
await copyFile(join(here, "src/index.html"), join(outdir, "index.html"));
await copyFile(join(here, "src/viewer.css"), join(outdir, "viewer.css"));
// the page of `landscape4d annotate` (plain JS, no npm packages): annotate.html, annotate.js, annotate.css
await build({
  entryPoints: [join(here, "src/annotate.js")],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "none",
  outfile: join(outdir, "annotate.js"),
  logLevel: "warning",
});
await copyFile(join(here, "src/annotate.html"), join(outdir, "annotate.html"));
await copyFile(join(here, "src/annotate.css"), join(outdir, "annotate.css"));

// the packages whose code is in the bundle, with their licence texts
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) packages.add(m[1]);
}
const sections = [];
for (const name of [...packages].sort()) {
  const dir = join(here, "node_modules", name);
  const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
  const licence = (await readdir(dir)).find((f) => /^(licen[sc]e|copying)(\.|$)/i.test(f));
  const text = licence ? await readFile(join(dir, licence), "utf8") : `(no licence file; package.json says ${pkg.license})`;
  sections.push(`${name} ${pkg.version} (${pkg.license})\n${"-".repeat(60)}\n${text.trim()}\n`);
}
await writeFile(join(outdir, "THIRD_PARTY_LICENSES.txt"),
  `Third-party code bundled into viewer.js by viewer/web/build.mjs\n\n${sections.join("\n")}`);
console.log(`viewer built into ${outdir} (bundled: ${[...packages].sort().join(", ")})`);
