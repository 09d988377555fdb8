// Builds every bundle with esbuild: extension host, CLI, worker, and one browser bundle per webview.
import * as esbuild from 'esbuild';
import { existsSync, readdirSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const production = process.argv.includes('--production');
const external = ['vscode', 'onnxruntime-node', 'koffi'];
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', legalComments: 'none' };

const node = [
  { in: 'src/extension/extension.ts', out: 'out/extension.js' },
  { in: 'src/cli/main.ts', out: 'out/cli.js', banner: '#!/usr/bin/env node' },
  { in: 'src/core/jobs/worker.ts', out: 'out/worker.js' },
  { in: 'test/extension/index.ts', out: 'out/test/index.js' },
];
mkdirSync('out', { recursive: true });
const builds = [];
for (const e of node) {
  if (!existsSync(e.in)) continue;
  builds.push(esbuild.build({
    ...common, entryPoints: [e.in], outfile: e.out, platform: 'node', format: 'cjs', target: 'node20',
    external, banner: e.banner ? { js: e.banner } : undefined,
  }));
}
if (existsSync('webview')) {
  for (const d of readdirSync('webview', { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    const entry = join('webview', d.name, 'main.ts');
    if (!existsSync(entry)) continue;
    builds.push(esbuild.build({
      ...common, entryPoints: [entry], outfile: `out/webview/${d.name}.js`, platform: 'browser', format: 'iife', target: 'es2022',
      loader: { '.css': 'text' },
    }));
  }
}
await Promise.all(builds);
console.log(`built ${builds.length} bundles${production ? ' (production)' : ''}`);
