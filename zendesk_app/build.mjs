// Builds src/ into backend/static/sidebar (committed, so `make run` needs no node).
// `node build.mjs --check` builds in memory and fails if the committed bundle is stale.
import * as esbuild from 'esbuild';
import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, '../backend/static/sidebar');
const check = process.argv.includes('--check');

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: {
    sidebar: 'src/main.js',
    harness: 'src/harness.js',
    styles: 'src/styles.css',
    'harness-styles': 'src/harness.css',
    insights: 'src/insights.js', // the team leads' page (nav_bar location)
    'insights-styles': 'src/insights.css',
  },
  outdir,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome109', 'firefox115', 'safari15.6', 'edge109'],
  legalComments: 'eof',
  charset: 'utf8',
  write: !check,
  logLevel: 'warning',
});

if (check) {
  const built = new Map(result.outputFiles.map((f) => [f.path, f.text]));
  const stale = [];
  for (const [path, text] of built) {
    let committed = null;
    try { committed = readFileSync(path, 'utf8'); } catch { /* missing */ }
    if (committed !== text) stale.push(path);
  }
  const extra = readdirSync(outdir).map((n) => join(outdir, n)).filter((p) => !built.has(p));
  if (stale.length || extra.length) {
    console.error(`backend/static/sidebar is not the build of zendesk_app/src; run \`make zendesk-build\`.`);
    for (const p of stale) console.error(`  stale:   ${p}`);
    for (const p of extra) console.error(`  unknown: ${p}`);
    process.exit(1);
  }
  console.log(`bundle is current (${built.size} files)`);
} else {
  mkdirSync(outdir, { recursive: true });
  console.log(`built into ${outdir}`);
}
