#!/usr/bin/env node
// Bundles the view's page (src/web/app, TypeScript) with esbuild into dist/web: app.js, its
// stylesheet and index.html. The server of `tcelab view` serves these files.
import { copyFileSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';

const out = 'dist/web';
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ['src/web/app/main.ts'],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  minify: true,
  sourcemap: true,
  outfile: `${out}/app.js`,
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) copyFileSync(`src/web/app/${f}`, `${out}/${f}`);
