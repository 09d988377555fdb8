/**
 * Packages the linux-x64 .vsix (scripts/package.mjs: production build + vsce, offline) and checks
 * what is inside: the bundles, the sample with its NOTICE, onnxruntime's and koffi's linux-x64
 * binaries — and none of src/, test/, source maps, dev dependencies or other platforms' binaries.
 * Set TS_VSIX=path to inspect an existing .vsix instead of packaging (~15 s).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { unzipSync, strFromU8 } from 'fflate';

const root = path.resolve(__dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };

function vsixPath(): string {
  if (process.env.TS_VSIX) return path.resolve(process.env.TS_VSIX);
  const r = spawnSync(process.execPath, ['scripts/package.mjs', 'linux-x64'], { cwd: root, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `npm run package failed:\n${r.stdout}\n${r.stderr}`);
  return path.join(root, 'dist', `${pkg.name}-${pkg.version}-linux-x64.vsix`);
}

test('linux-x64 .vsix holds the runtime files and nothing else', { timeout: 200_000 }, () => {
  const file = vsixPath();
  const size = statSync(file).size;
  const zip = readFileSync(file);
  const names: string[] = [];
  const wanted = new Set(['extension/package.json', 'extension/out/extension.js', 'extension/media/sample/stories260K.gguf']);
  // List every entry; decompress only the few whose content is checked.
  const files = unzipSync(zip, { filter: (f) => { names.push(f.name); return wanted.has(f.name); } });

  const must = [
    'extension/package.json',
    'extension/out/extension.js',
    'extension/out/cli.js',
    'extension/out/webview/overview.js',
    'extension/media/icon.png',
    'extension/media/tensor-scalpel.svg',
    'extension/media/sample/stories260K.gguf',
    'extension/media/sample/NOTICE.md',
    'extension/node_modules/onnxruntime-node/package.json',
    'extension/node_modules/onnxruntime-node/dist/index.js',
    'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
    'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
    'extension/node_modules/onnxruntime-common/dist/cjs/index.js',
    'extension/node_modules/koffi/index.cjs',
    'extension/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node',
  ];
  for (const m of must) assert.ok(names.includes(m), `missing ${m}`);
  // The README's screenshots ship: the packaged README keeps relative links, which VS Code resolves
  // inside the installed extension.
  const shots = [...readFileSync(path.join(root, 'README.md'), 'utf8').matchAll(/\]\((docs\/screenshots\/[^)\s]+\.png)\)/g)].map((m) => m[1]!);
  assert.ok(shots.length >= 4, 'README shows screenshots');
  for (const f of shots) assert.ok(names.includes(`extension/${f}`), `missing README picture ${f}`);
  // Everything under media/sample ships (the sample model, its NOTICE, and what features add beside it).
  for (const f of readdirSync(path.join(root, 'media', 'sample'), { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue;
    const rel = path.relative(root, path.join(f.parentPath ?? (f as unknown as { path: string }).path, f.name)).split(path.sep).join('/');
    assert.ok(names.includes(`extension/${rel}`), `missing ${rel}`);
  }

  const forbidden: Array<[RegExp, string]> = [
    [/^extension\/src\//, 'sources'],
    [/^extension\/test\//, 'tests'],
    [/^extension\/(bench|scripts|webview)\//, 'dev folders'],
    [/\.map$/, 'source maps'],
    [/\.ts$/, 'TypeScript sources/declarations'],
    [/onnxruntime-node\/bin\/napi-v\d+\/(darwin|win32)\//, 'darwin/win32 onnxruntime binaries'],
    [/onnxruntime-node\/bin\/napi-v\d+\/linux\/arm64\//, 'linux-arm64 onnxruntime binaries'],
    [/koffi-(?!linux-x64\/)/, 'other platforms\' koffi'],
    [/\/musl_x64\//, 'the musl koffi build'],
    [/node_modules\/(typescript|esbuild|@esbuild|tsx|playwright-core|@vscode\/vsce|@types|fast-check|ml-matrix|@huggingface)\//, 'dev dependencies'],
    [/node_modules\/(d3[^/]*|fflate|protobufjs|@vscode-elements|adm-zip|global-agent)\//, 'dependencies esbuild already bundled or only the installer uses'],
    [/^extension\/(out\/test|test-artifacts|dist)\//, 'test output'],
  ];
  for (const [re, what] of forbidden) {
    const hit = names.filter((n) => re.test(n));
    assert.deepEqual(hit, [], `${what} packaged`);
  }
  assert.ok(names.some((n) => /^extension\/out\/webview\/[^/]+\.js$/.test(n)));

  // The packaged manifest is ours and the bundle is the production one (no source map comment).
  const manifest = JSON.parse(strFromU8(files['extension/package.json'])) as { contributes: { customEditors: unknown[] } };
  assert.equal(manifest.contributes.customEditors.length, 2);
  assert.doesNotMatch(strFromU8(files['extension/out/extension.js']).slice(-500), /sourceMappingURL/);
  // The sample is the exact file ../shared/README.md describes.
  const sha = createHash('sha256').update(files['extension/media/sample/stories260K.gguf']).digest('hex');
  assert.equal(sha, '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d');
  // Small: the linux-x64 onnxruntime (~44 MB uncompressed) dominates; everything else is a few MB.
  assert.ok(size < 25 * 2 ** 20, `vsix is ${size} bytes`);
});
