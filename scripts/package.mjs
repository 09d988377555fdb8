#!/usr/bin/env node
/**
 * Builds one .vsix per target platform, offline:
 *   node scripts/package.mjs                 -> dist/tensor-scalpel-<version>-linux-x64.vsix
 *   node scripts/package.mjs linux-arm64 ... -> one file per named target
 *   node scripts/package.mjs --all           -> every target onnxruntime-node ships binaries for:
 *                                               linux-x64, linux-arm64, darwin-arm64, win32-x64, win32-arm64
 *
 * A production build (minified, no source maps), then `vsce package --target <t>` in dependencies
 * mode (vsce asks the local `npm list` for the production dependency tree: offline) filtered by
 * .vscodeignore, which leaves everything out and lets back in the bundles, media, and the runtime
 * dependencies esbuild keeps external: onnxruntime-node (+ onnxruntime-common) and koffi, each with
 * only the target's native binaries. (--no-dependencies was tried: vsce then drops node_modules
 * whatever the ignore file says.) For a target other than linux-x64 the three platform-specific
 * lines of .vscodeignore are rewritten into a temporary ignore file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const targets = process.argv.slice(2).filter((a) => !a.startsWith('-'));
/** The targets onnxruntime-node 1.30 has CPU binaries for (no darwin-x64). */
const ALL_TARGETS = ['linux-x64', 'linux-arm64', 'darwin-arm64', 'win32-x64', 'win32-arm64'];
if (process.argv.includes('--all')) targets.push(...ALL_TARGETS.filter((t) => !targets.includes(t)));
if (targets.length === 0) targets.push('linux-x64');

/** vsce target -> where the target's native binaries live. */
function platformPaths(target) {
  const [osName, arch] = target.split('-');
  return {
    ort: `node_modules/onnxruntime-node/bin/napi-v6/${osName}/${arch}`,
    koffiPkg: `node_modules/@koromix/koffi-${osName}-${arch}`,
    koffiBinary: `${osName}_${arch}/koffi.node`,
  };
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/**
 * npm installs only this machine's koffi binary (@koromix/koffi-<os>-<arch> is an optional
 * dependency per platform). For another target, fetch that package at koffi's pinned version with
 * `npm pack` (the only step that needs the network) and unpack it where npm would have installed it,
 * so vsce's dependency listing sees it as koffi's optional dependency.
 */
function fetchKoffi(target, dest) {
  const name = path.basename(path.dirname(dest)) + '/' + path.basename(dest);
  const version = readJson('node_modules/koffi/package.json').optionalDependencies?.[name];
  if (!version) {
    console.error(`package: ${target}: koffi ${readJson('node_modules/koffi/package.json').version} has no ${name} binary package`);
    process.exit(1);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ts-koffi-'));
  try {
    console.log(`package: fetching ${name}@${version} for ${target}`);
    const r = spawnSync('npm', ['pack', `${name}@${version}`, '--pack-destination', dir, '--silent'], { encoding: 'utf8' });
    const tgz = r.status === 0 ? path.join(dir, r.stdout.trim().split('\n').pop()) : '';
    if (!tgz || !existsSync(tgz)) {
      console.error(`package: ${target}: could not fetch ${name}@${version} (npm pack: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}); a ${target} .vsix needs it, and fetching needs the network`);
      process.exit(1);
    }
    mkdirSync(dest, { recursive: true });
    run('tar', ['-xzf', tgz, '-C', dest, '--strip-components=1']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, npm_config_yes: 'true' } });
  if (r.status !== 0) {
    console.error(`package: ${[cmd, ...args].join(' ')} failed (${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

run(process.execPath, ['scripts/build.mjs', '--production']);
mkdirSync('dist', { recursive: true });
const base = readFileSync('.vscodeignore', 'utf8');
const linux = platformPaths('linux-x64');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ts-package-'));
try {
  for (const target of targets) {
    const p = platformPaths(target);
    if (!existsSync(p.ort)) {
      console.error(`package: ${target}: onnxruntime-node ${readJson('node_modules/onnxruntime-node/package.json').version} ships no ${target} binaries (${p.ort}), so there is no ${target} .vsix`);
      process.exit(1);
    }
    if (!existsSync(p.koffiPkg)) fetchKoffi(target, p.koffiPkg);
    let ignoreFile = '.vscodeignore';
    if (target !== 'linux-x64') {
      ignoreFile = path.join(tmp, `vscodeignore-${target}`);
      writeFileSync(ignoreFile, base
        .replaceAll(linux.ort, p.ort)
        .replaceAll(linux.koffiPkg, p.koffiPkg)
        .replaceAll(linux.koffiBinary, p.koffiBinary));
    }
    const out = path.join('dist', `${pkg.name}-${pkg.version}-${target}.vsix`);
    rmSync(out, { force: true });
    run(process.execPath, [
      'node_modules/@vscode/vsce/vsce', 'package',
      '--target', target, '--ignoreFile', ignoreFile, '--out', out,
      // The README's relative links (docs/screenshots) stay relative: vsce would otherwise rewrite
      // them to the repository's raw URLs, i.e. fetch images from the network when the extension's
      // page is shown. The screenshots are not in the .vsix (see .vscodeignore).
      '--no-rewrite-relative-links',
    ]);
    console.log(`package: wrote ${out}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
