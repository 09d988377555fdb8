#!/usr/bin/env node
/**
 * Builds one .vsix per target platform, offline:
 *   node scripts/package.mjs                 -> dist/tensor-scalpel-<version>-linux-x64.vsix
 *   node scripts/package.mjs linux-arm64 ... -> one file per named target
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
    for (const need of [p.ort, p.koffiPkg]) {
      if (!existsSync(need)) {
        console.error(`package: ${target}: ${need} is not installed here, so a ${target} .vsix would lack its native code`);
        process.exit(1);
      }
    }
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
      // The project has no public repository yet; vsce would otherwise stop to ask. The README's
      // relative links (docs/screenshots) stay relative: with no repository to point them at, vsce
      // would refuse to rewrite them.
      '--allow-missing-repository', '--no-rewrite-relative-links',
    ]);
    console.log(`package: wrote ${out}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
