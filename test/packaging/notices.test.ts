/**
 * THIRD_PARTY_NOTICES.md must name every npm package whose code ends up in a shipped bundle
 * (extension host, CLI, worker, webviews). esbuild's metafile lists the bundled inputs; every
 * node_modules package among them must appear in the notices, so a new dependency cannot ship
 * without its licence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.resolve(__dirname, '../..');

function packageOf(input: string): string | undefined {
  const parts = input.split('/');
  const i = parts.lastIndexOf('node_modules');
  if (i < 0) return undefined;
  return parts[i + 1]!.startsWith('@') ? `${parts[i + 1]}/${parts[i + 2]}` : parts[i + 1];
}

test('every npm package bundled into a shipped bundle is named in THIRD_PARTY_NOTICES.md', { timeout: 120_000 }, async () => {
  const external = ['vscode', 'onnxruntime-node', 'koffi'];
  const node = ['src/extension/extension.ts', 'src/cli/main.ts', 'src/core/jobs/worker.ts'];
  const web = readdirSync(path.join(root, 'webview'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(root, 'webview', d.name, 'main.ts')))
    .map((d) => `webview/${d.name}/main.ts`);
  const common = { bundle: true, write: false, metafile: true, absWorkingDir: root, logLevel: 'silent' as const, outdir: 'out-notices' };
  const results = await Promise.all([
    esbuild.build({ ...common, entryPoints: node, platform: 'node', format: 'cjs', target: 'node20', external }),
    esbuild.build({ ...common, entryPoints: web, platform: 'browser', format: 'iife', target: 'es2022', loader: { '.css': 'text' } }),
  ]);
  const packages = new Set<string>();
  // Only inputs that contribute bytes to an output (tree-shaken modules are parsed but not shipped).
  for (const r of results) for (const out of Object.values(r.metafile!.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) { const p = packageOf(input); if (p && bytesInOutput > 0) packages.add(p); }
  }
  assert.ok(packages.has('d3-selection') && packages.has('protobufjs'), `the bundles were analysed: ${[...packages].join(', ')}`);
  const notices = readFileSync(path.join(root, 'THIRD_PARTY_NOTICES.md'), 'utf8');
  const named = (p: string) => new RegExp(`(^|[^\\w@/-])${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}([^\\w-]|$)`, 'm').test(notices);
  assert.deepEqual([...packages].filter((p) => !named(p)).sort(), []);
});
