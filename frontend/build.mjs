// Bundles the tab into tb_plugin_ttsmon/static/{index.js,index.css}.
//
// The output must be byte-identical for identical sources (the committed
// bundle is checked against a rebuild): no timestamps, no absolute paths,
// no source maps, pinned esbuild. `node build.mjs --check` rebuilds in
// memory and fails if the committed files differ.

import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(here, "..", "tb_plugin_ttsmon", "static");
const check = process.argv.includes("--check");

const uplotVersion = JSON.parse(await readFile(join(here, "node_modules", "uplot", "package.json"), "utf8")).version;
const banner = `/*! TTS Monitor tab of tb_plugin_ttsmon (Apache-2.0). Bundles uPlot ${uplotVersion}, (c) Leon Sorokin, MIT License, https://github.com/leeoniya/uPlot */`;

const common = {
  banner: { js: banner, css: banner },
  absWorkingDir: here,
  bundle: true,
  minify: true,
  sourcemap: false,
  legalComments: "eof",
  charset: "utf8",
  write: false,
  logLevel: "warning",
};

const js = await esbuild.build({
  ...common,
  entryPoints: ["src/index.ts"],
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  outfile: join(outDir, "index.js"),
});
const css = await esbuild.build({
  ...common,
  entryPoints: ["src/styles.css"],
  loader: { ".css": "css" },
  target: ["chrome100", "firefox100", "safari15"],
  outfile: join(outDir, "index.css"),
});

const outputs = [...js.outputFiles, ...css.outputFiles];
let stale = 0;
for (const f of outputs) {
  const text = f.text;
  if (text.includes(here) || text.includes(outDir)) {
    throw new Error(`${f.path}: output holds an absolute path`);
  }
  if (check) {
    let old = "";
    try {
      old = await readFile(f.path, "utf8");
    } catch {
      // missing counts as stale
    }
    if (old !== text) {
      console.error(`stale: ${f.path} (run: cd frontend && npm ci && npm run build)`);
      stale++;
    }
  } else {
    await mkdir(dirname(f.path), { recursive: true });
    await writeFile(f.path, f.contents);
    console.log(`${f.path.slice(resolve(here, "..").length + 1)}  ${f.contents.length} bytes`);
  }
}
if (stale) process.exit(1);
