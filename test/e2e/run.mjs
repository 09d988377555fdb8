#!/usr/bin/env node
/**
 * End-to-end test in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) with this extension loaded
 * from its folder (extensionDevelopmentPath), driven through Debian's Chromium with playwright-core.
 *
 *   npm run test:e2e            (after scripts/setup-e2e.sh)
 *
 * Env: TS_E2E_CACHE (code-server cache, default ~/.cache/tensor-scalpel-e2e), TS_E2E_TIMEOUT (seconds,
 * default 480), TS_E2E_KEEP=1 keeps the temp folder, TS_E2E_NO_BUILD=1 skips the build,
 * TS_E2E_NO_PACKAGE=1 skips packaging and installing the .vsix, TS_E2E_ONLY=<text> runs only the steps
 * whose name contains it.
 * Everything is checked through the DOM (workbench and webview iframes) or the extension's log file;
 * code-server's exit code says nothing about the tests. Screenshots go to test-artifacts/e2e/; the
 * README's pictures (docs/screenshots/*.png) are taken by this run too, and checked at the end.
 * The last line is `e2e: N passed, M failed`; the exit code is non-zero on any failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, openSync, closeSync, readSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = path.resolve(ROOT, '../shared/fixtures');
const CACHE = process.env.TS_E2E_CACHE || path.join(os.homedir(), '.cache', 'tensor-scalpel-e2e');
const CODE_SERVER = path.join(CACHE, 'code-server-4.100.3', 'package', 'out', 'node', 'entry.js');
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'e2e');
/** The README's pictures: rewritten by every run (screenshot(name, { readme })), checked at the end. */
const README_SHOTS = path.join(ROOT, 'docs', 'screenshots');
/** TS_E2E_ONLY=<text>: run only the steps whose name contains it (for working on one part; skips the README check). */
const ONLY = process.env.TS_E2E_ONLY || '';
const TIMEOUT_S = Number(process.env.TS_E2E_TIMEOUT || 480);
const started = Date.now();

const results = [];
/** README screenshot file name -> bytes written by this run. */
const readmeShots = new Map();
let codeServer;
let browser;
let tmp;
let finished = false;

function elapsed() {
  return `${((Date.now() - started) / 1000).toFixed(1)}s`;
}
function note(msg) {
  console.log(`[e2e ${elapsed()}] ${msg}`);
}
function record(name, ok, detail = '') {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cleanup() {
  try { await browser?.close(); } catch { /* already gone */ }
  if (codeServer?.pid && codeServer.exitCode === null) {
    try { process.kill(-codeServer.pid, 'SIGTERM'); } catch { /* gone */ }
    for (let i = 0; i < 20 && codeServer.exitCode === null; i++) await sleep(100);
    try { process.kill(-codeServer.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  if (tmp && !process.env.TS_E2E_KEEP) rmSync(tmp, { recursive: true, force: true });
  else if (tmp) note(`kept ${tmp}`);
}

async function finish(extraFailure) {
  if (finished) return;
  finished = true;
  if (extraFailure) record(extraFailure.name, false, extraFailure.detail);
  await cleanup();
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || results.length === 0 ? 1 : 0);
}

const overall = setTimeout(() => {
  void finish({ name: 'overall timeout', detail: `the run exceeded ${TIMEOUT_S} s` });
}, TIMEOUT_S * 1000);
overall.unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void finish({ name: 'interrupted', detail: sig }));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Safetensors parameter total straight from the file's JSON header (independent of the reader). */
function safetensorsParams(file) {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const header = Buffer.alloc(n);
    readSync(fd, header, 0, n, 8);
    const json = JSON.parse(header.toString('utf8'));
    let total = 0;
    for (const [k, v] of Object.entries(json)) if (k !== '__metadata__') total += v.shape.reduce((a, d) => a * d, 1);
    return total;
  } finally {
    closeSync(fd);
  }
}

/**
 * Splits a safetensors file into two shards plus a Hugging Face `model.safetensors.index.json`
 * (weight_map: tensor name -> shard file), the layout of sharded checkpoints on the Hub.
 */
function writeShards(src, dir) {
  const buf = readFileSync(src);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const dataStart = 8 + n;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const halves = [names.slice(0, Math.ceil(names.length / 2)), names.slice(Math.ceil(names.length / 2))];
  const weightMap = {};
  let total = 0;
  halves.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const h = {};
    const chunks = [];
    let off = 0;
    for (const name of part) {
      const t = header[name];
      const [a, b] = t.data_offsets;
      chunks.push(buf.subarray(dataStart + a, dataStart + b));
      h[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + (b - a)] };
      off += b - a;
      weightMap[name] = file;
    }
    total += off;
    let json = Buffer.from(JSON.stringify(h), 'utf8');
    const pad = (8 - (json.length % 8)) % 8; // the spec pads the header with spaces to 8 bytes
    json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(path.join(dir, file), Buffer.concat([len, json, ...chunks]));
  });
  writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
}

/** WCAG 2 contrast ratio of two CSS rgb()/rgba() colours (alpha composited over the background). */
function contrastRatio(fg, bg) {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    if (!m) throw new Error(`unparsable colour ${c}`);
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const lum = ({ r, g, b }) => {
    const ch = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
  };
  const B = parse(bg);
  const F0 = parse(fg);
  const F = { r: F0.r * F0.a + B.r * (1 - F0.a), g: F0.g * F0.a + B.g * (1 - F0.a), b: F0.b * F0.a + B.b * (1 - F0.a) };
  const [l1, l2] = [lum(F), lum(B)].sort((x, y) => y - x);
  return (l1 + 0.05) / (l2 + 0.05);
}

async function main() {
  if (!existsSync(CODE_SERVER)) {
    record('setup present', false, `${CODE_SERVER} missing: run scripts/setup-e2e.sh first`);
    return;
  }
  if (!existsSync('/usr/bin/chromium')) {
    record('setup present', false, '/usr/bin/chromium missing: run scripts/setup-e2e.sh first');
    return;
  }
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  mkdirSync(README_SHOTS, { recursive: true });

  if (!process.env.TS_E2E_NO_BUILD) {
    note('building');
    const b = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, encoding: 'utf8' });
    if (b.status !== 0) {
      record('build', false, (b.stderr || b.stdout).slice(-2000));
      return;
    }
  }
  if (!existsSync(path.join(ROOT, 'out/extension.js')) || !existsSync(path.join(ROOT, 'out/webview/overview.js'))) {
    record('build', false, 'out/extension.js or out/webview/overview.js missing');
    return;
  }

  // --- a fresh profile, workspace and XDG folders for this run --------------------------------
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ts-e2e-'));
  const dirs = Object.fromEntries(['user', 'ext', 'config', 'data', 'cache', 'ws'].map((d) => [d, path.join(tmp, d)]));
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  mkdirSync(path.join(dirs.user, 'User'), { recursive: true });
  const settingsFile = path.join(dirs.user, 'User', 'settings.json');
  const baseSettings = {
    'workbench.colorTheme': 'Default Dark Modern',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'git.enabled': false,
    'chat.commandCenter.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'workbench.view.alwaysShowHeaderActions': true,
  };
  writeFileSync(settingsFile, JSON.stringify(baseSettings, null, 2));

  const ggufName = 'stories260K_q8_0.gguf';
  const stName = 'pico.safetensors';
  const truncName = 'truncated.safetensors';
  const ptName = 'stories260K.pt';
  const onnxName = 'pico.onnx';
  copyFileSync(path.join(FIXTURES, 'pico', onnxName), path.join(dirs.ws, onnxName));
  const shardDir = path.join(dirs.ws, 'sharded');
  mkdirSync(shardDir);
  writeShards(path.join(FIXTURES, 'pico', stName), shardDir);
  const indexName = 'model.safetensors.index.json';
  copyFileSync(path.join(FIXTURES, 'stories260k', ptName), path.join(dirs.ws, ptName));
  copyFileSync(path.join(FIXTURES, 'stories260k', ggufName), path.join(dirs.ws, ggufName));
  copyFileSync(path.join(FIXTURES, 'pico', stName), path.join(dirs.ws, stName));
  // A checkpoint cut off inside its data: the header is intact, a tensor runs past the end.
  const full = readFileSync(path.join(FIXTURES, 'pico', stName));
  writeFileSync(path.join(dirs.ws, truncName), full.subarray(0, Math.floor(full.length * 0.4)));

  // What the core says about the same files (the UI must show exactly this).
  const exp = spawnSync(process.execPath, ['--import', 'tsx', 'test/e2e/expected.ts',
    path.join(ROOT, 'media/sample/stories260K.gguf'), path.join(dirs.ws, ggufName), path.join(dirs.ws, stName), path.join(dirs.ws, truncName), path.join(dirs.ws, ptName),
    path.join(dirs.ws, onnxName), path.join(shardDir, indexName)],
  { cwd: ROOT, encoding: 'utf8' });
  if (exp.status !== 0) {
    record('expected values from the core', false, exp.stderr.slice(-1000));
    return;
  }
  const expected = JSON.parse(exp.stdout);
  const sampleExp = expected[path.join(ROOT, 'media/sample/stories260K.gguf')];
  const ggufExp = expected[path.join(dirs.ws, ggufName)];
  const stExp = expected[path.join(dirs.ws, stName)];
  const truncExp = expected[path.join(dirs.ws, truncName)];
  const ptExp = expected[path.join(dirs.ws, ptName)];
  const onnxExp = expected[path.join(dirs.ws, onnxName)];
  const indexExp = expected[path.join(shardDir, indexName)];
  const stHeaderParams = safetensorsParams(path.join(dirs.ws, stName));

  // --- code-server -----------------------------------------------------------------------------
  const port = await freePort();
  const inhostResults = path.join(tmp, 'inhost-results.json');
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: dirs.config, XDG_DATA_HOME: dirs.data, XDG_CACHE_HOME: dirs.cache,
    TS_E2E_INHOST_RESULTS: inhostResults,
    HOME: process.env.HOME, // code-server itself only writes under the XDG folders and --user-data-dir
  };
  const serverLog = path.join(tmp, 'code-server.log');
  const logFd = openSync(serverLog, 'a');
  note(`starting code-server on 127.0.0.1:${port}`);
  codeServer = spawn(process.execPath, [CODE_SERVER,
    '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', dirs.user, '--extensions-dir', dirs.ext, dirs.ws],
  { env, detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let up = false;
  for (let i = 0; i < 150 && codeServer.exitCode === null; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) { up = true; break; }
    } catch { /* not yet */ }
    await sleep(200);
  }
  if (!up) {
    record('code-server starts', false, readFileSync(serverLog, 'utf8').slice(-2000));
    return;
  }
  record('code-server starts', true, `${elapsed()} after launch`);

  // --- Chromium ----------------------------------------------------------------------------------
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${ROOT}`]]);
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.ws)}&payload=${encodeURIComponent(payload)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  note('workbench loaded');

  let shot = 0;
  /**
   * Saves test-artifacts/e2e/NN-<name>.png. With `readme`, the same moment is also written to
   * docs/screenshots/<readme>.png (the README's pictures; `clip: 'editor'` crops to the editor part,
   * which reads better at README width). Written to a temp file beside it, then renamed.
   */
  const screenshot = async (name, { readme, clip } = {}) => {
    const file = path.join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file });
    if (readme) {
      let png = readFileSync(file);
      if (clip === 'editor') {
        const box = await page.locator('.part.editor').first().boundingBox();
        if (!box) throw new Error(`README screenshot ${readme}: no editor part to crop to`);
        png = await page.screenshot({ clip: box });
      }
      const target = path.join(README_SHOTS, `${readme}.png`);
      const part = `${target}.${process.pid}.tmp`;
      writeFileSync(part, png);
      renameSync(part, target);
      readmeShots.set(`${readme}.png`, png.length);
    }
    return file;
  };

  const escapeRe = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  /**
   * Runs a command from the palette: F1, type its title, Enter. Retries while the extension activates
   * (a contributed command may be missing for the first seconds). When another entry sorts above the
   * exact title, the exact one is clicked instead of taking the first with Enter.
   */
  async function runCommand(title) {
    const widget = page.locator('.quick-input-widget');
    const input = widget.locator('input.input');
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        // Start from a closed palette with focus in the workbench.
        if (await widget.isVisible()) {
          await page.keyboard.press('Escape');
          await widget.waitFor({ state: 'hidden', timeout: 2_000 });
        }
        await page.keyboard.press('F1');
        await input.waitFor({ timeout: 3_000 });
        await input.fill(`>${title}`, { timeout: 3_000 });
        const row = widget.locator('.monaco-list-row')
          .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRe(title)}\\s*$`) }) }).first();
        await row.waitFor({ timeout: 1500 });
        if (/\bfocused\b/.test((await row.getAttribute('class')) ?? '')) await page.keyboard.press('Enter');
        else await row.click();
        return;
      } catch {
        // Not listed yet (the extension is still activating), or focus was somewhere that kept F1:
        // put focus on the active editor tab and try again.
        await page.keyboard.press('Escape').catch(() => undefined);
        if (attempt % 3 === 2) await page.locator('.tabs-container .tab.active').first().click({ timeout: 1_000 }).catch(() => undefined);
        await sleep(700);
      }
    }
    throw new Error(`command "${title}" could not be run from the palette`);
  }

  /** Opens a workspace file through Quick Open (Ctrl+P), which uses the default editor for its name. */
  async function quickOpen(query) {
    const name = path.basename(query);
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ timeout: 10_000 });
    await input.fill(query);
    // Wait until the filtered list has put this file first: before the filter applies, the list shows
    // recently opened files and Enter would open whichever is on top.
    await page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: name }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
  }

  /** Picks a colour theme through the palette (Preferences: Color Theme), as a user would. */
  async function pickTheme(label, workbenchClass) {
    await runCommand('Preferences: Color Theme');
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ timeout: 10_000 });
    await input.fill(label);
    await page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: label }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');
    await page.locator(`.monaco-workbench.${workbenchClass}`).waitFor({ timeout: 30_000 });
  }

  /** The active webview's content frame (editors are closed between steps so there is one). */
  const webview = () => page.frameLocator('iframe.webview.ready').first().frameLocator('#active-frame');
  const closeAllEditors = () => runCommand('View: Close All Editors');
  const view = page.locator('[id="workbench.view.extension.tensorScalpel"]');
  const treeRows = () => view.locator('.monaco-list-row');

  async function step(name, fn) {
    if (ONLY && !name.includes(ONLY)) return;
    try {
      const detail = await fn();
      record(name, true, typeof detail === 'string' ? detail : '');
    } catch (err) {
      record(name, false, String(err?.message ?? err).split('\n').slice(0, 6).join(' | '));
      try { await screenshot(`failed-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`); } catch { /* page gone */ }
    }
  }

  async function bodyContrast() {
    const frame = webview();
    await frame.locator('#file-name').waitFor({ timeout: 20_000 });
    const colours = await frame.locator('body').evaluate((body) => {
      const cs = getComputedStyle(body);
      const td = document.querySelector('td.name');
      return { fg: cs.color, bg: cs.backgroundColor, td: td ? getComputedStyle(td).color : cs.color };
    });
    return { ...colours, ratio: contrastRatio(colours.fg, colours.bg), tdRatio: contrastRatio(colours.td, colours.bg) };
  }

  // 1. The activity-bar container, its welcome view, and the sample model.
  await step('welcome view offers Open Sample Model; the tree populates', async () => {
    const item = page.locator('.activitybar .action-item a[aria-label^="Tensor Scalpel"]').first();
    await item.waitFor({ timeout: 30_000 });
    await item.click();
    const button = view.locator('.welcome-view-content a, .welcome-view-content .monaco-button', { hasText: 'Open Sample Model' }).first();
    await button.waitFor({ timeout: 30_000 });
    await view.locator('.welcome-view-content', { hasText: 'Open Checkpoint' }).waitFor({ timeout: 5_000 });
    await screenshot('welcome-view');
    await button.click();
    const modelRow = treeRows().filter({ hasText: 'stories260K.gguf' }).first();
    await modelRow.waitFor({ timeout: 30_000 });
    // Expand the model: its groups appear in model order.
    await modelRow.locator('.monaco-tl-twistie').click();
    await treeRows().filter({ hasText: 'block 4' }).first().waitFor({ timeout: 10_000 });
    const labels = (await treeRows().locator('.label-name').allInnerTexts()).map((l) => l.trim());
    const groups = labels.filter((l) => /^(embedding|block \d+|head|other)$/.test(l));
    if (groups.join(',') !== 'embedding,block 0,block 1,block 2,block 3,block 4,head') throw new Error(`groups ${groups.join(',')}`);
    // Open a group: tensors show shape, dtype and parameter count.
    await treeRows().filter({ hasText: 'block 0' }).first().locator('.monaco-tl-twistie').click();
    const tensorRow = treeRows().filter({ hasText: 'blk.0.attn_q.weight' }).first();
    await tensorRow.waitFor({ timeout: 10_000 });
    const text = (await tensorRow.innerText()).replace(/\s+/g, ' ');
    if (!/\[64, 64\] F32 · 4,096/.test(text)) throw new Error(`tensor row reads "${text}"`);
    // The sample's overview opened too.
    const params = (await webview().locator('#total-params').innerText({ timeout: 20_000 })).trim();
    const want = sampleExp.totalParams.toLocaleString('en-US');
    if (!params.startsWith(want)) throw new Error(`overview shows ${params}, core says ${want}`);
    await screenshot('sample-model-tree-and-overview');
    return `${groups.length} groups; tensor row "${text.trim()}"; overview ${params}`;
  });

  // 2. A GGUF from the fixtures in the custom editor.
  await step(`${ggufName} opens in the overview editor`, async () => {
    await closeAllEditors();
    await quickOpen(ggufName);
    const frame = webview();
    await frame.locator('#file-name', { hasText: ggufName }).waitFor({ timeout: 30_000 });
    const params = (await frame.locator('#total-params').innerText()).trim();
    const want = ggufExp.totalParams.toLocaleString('en-US');
    if (!params.startsWith(want)) throw new Error(`shows ${params}, expected ${want}`);
    const name = ggufExp.tensorNames.find((n) => n.includes('ffn_down')) ?? ggufExp.tensorNames[0];
    await frame.locator(`tr.tensor-row[data-name="${name}"]`).waitFor({ timeout: 10_000 });
    const mix = await frame.locator('#dtype-mix').innerText();
    if (!/Q8_0/.test(mix)) throw new Error(`dtype mix "${mix}" lacks Q8_0`);
    // The tree follows the active editor: the model is listed and selected.
    const selected = view.locator('.monaco-list-row.selected', { hasText: ggufName });
    await selected.first().waitFor({ timeout: 10_000 });
    await screenshot('gguf-overview-dark', { readme: 'overview-dark' });
    return `${params} parameters, ${name} listed, dtype mix "${mix.replace(/\s+/g, ' ')}"`;
  });

  // 3. A safetensors file; its parameter count checked against the file's own JSON header.
  let darkContrast;
  await step(`${stName} opens in the overview editor`, async () => {
    await closeAllEditors();
    await quickOpen(stName);
    const frame = webview();
    await frame.locator('#file-name', { hasText: stName }).waitFor({ timeout: 30_000 });
    const params = (await frame.locator('#total-params').innerText()).trim();
    const want = stHeaderParams.toLocaleString('en-US');
    if (!params.startsWith(want)) throw new Error(`shows ${params}, header says ${want}`);
    if (stExp.totalParams !== stHeaderParams) throw new Error(`core ${stExp.totalParams} != header ${stHeaderParams}`);
    await frame.locator('tr.tensor-row[data-name="h.0.attn.c_attn.weight"]').waitFor({ timeout: 10_000 });
    // The filter box and sorting work inside the webview.
    await frame.locator('#tensor-filter').fill('c_attn.weight');
    const shown = await frame.locator('tr.tensor-row').count();
    if (shown !== stExp.tensorNames.filter((n) => n.includes('c_attn.weight')).length) throw new Error(`filter shows ${shown} rows`);
    await frame.locator('#tensor-filter').fill('');
    await frame.locator('th button.sort', { hasText: 'Parameters' }).click();
    const first = await frame.locator('tr.tensor-row').first().getAttribute('data-name');
    await frame.locator('th button.sort', { hasText: 'Group' }).click();
    // The page runs under the strict CSP, and nothing on it was blocked.
    const csp = await frame.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    if (!/default-src 'none'/.test(csp) || !/script-src 'nonce-[^']+'(;|$)/.test(csp)) throw new Error(`CSP is "${csp}"`);
    const violations = await frame.locator('html').getAttribute('data-csp-violations');
    if (violations !== '0') throw new Error(`${violations} CSP violations`);
    darkContrast = await bodyContrast();
    if (darkContrast.ratio < 4.5) throw new Error(`dark theme contrast ${darkContrast.ratio.toFixed(2)} (${darkContrast.fg} on ${darkContrast.bg})`);
    await screenshot('safetensors-overview-dark');
    return `${params} parameters; largest tensor ${first}; dark contrast ${darkContrast.ratio.toFixed(2)}:1`;
  });

  // 3b. The overview and the tree follow each other.
  await step('overview row click selects the tensor in the tree; tree click highlights it in the overview', async () => {
    const frame = webview();
    await frame.locator('tr.tensor-row[data-name="h.2.mlp.c_fc.weight"]').click();
    await view.locator('.monaco-list-row.selected', { hasText: 'h.2.mlp.c_fc.weight' }).first().waitFor({ timeout: 10_000 });
    const target = 'h.2.ln_1.weight';
    await treeRows().filter({ hasText: target }).first().click();
    await frame.locator(`tr.tensor-row.highlight[data-name="${target}"]`).waitFor({ timeout: 10_000 });
    await screenshot('tree-and-overview-linked');
    // The webview keeps its UI state (getState/setState) when its tab is hidden and shown again.
    await frame.locator('#tensor-filter').fill('c_fc');
    await quickOpen(ggufName);
    await webview().locator('#file-name', { hasText: ggufName }).waitFor({ timeout: 30_000 });
    await page.locator('.tabs-container .tab', { hasText: stName }).first().click();
    await webview().locator('#file-name', { hasText: stName }).waitFor({ timeout: 30_000 });
    const kept = await webview().locator('#tensor-filter').inputValue();
    if (kept !== 'c_fc') throw new Error(`filter after switching tabs is "${kept}"`);
    await webview().locator('#tensor-filter').fill('');
    return `h.2.mlp.c_fc.weight selected in the tree; ${target} highlighted in the overview; filter kept across tab switch`;
  });

  // 3c. Open Checkpoint… through the (simple, in-browser) file dialog: a PyTorch file.
  await step(`Open Checkpoint… opens ${ptName} picked in the file dialog`, async () => {
    await closeAllEditors();
    await runCommand('Tensor Scalpel: Open Checkpoint…');
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ timeout: 10_000 });
    // The dialog fills in its starting folder and listing a moment after it opens and may reset the
    // value while doing so: wait for the listing, then type the path until the dialog accepts it.
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: ptName }).first().waitFor({ timeout: 10_000 });
    const target = path.join(dirs.ws, ptName);
    let accepted = false;
    for (let attempt = 0; attempt < 5 && !accepted; attempt++) {
      await input.fill(target);
      await sleep(300);
      if ((await input.inputValue()) !== target) continue;
      await page.keyboard.press('Enter');
      accepted = await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 3_000 }).then(() => true, () => false);
    }
    if (!accepted) throw new Error('the file dialog did not accept the path');
    const frame = webview();
    await frame.locator('#file-name', { hasText: ptName }).waitFor({ timeout: 30_000 });
    const params = (await frame.locator('#total-params').innerText()).trim();
    const want = ptExp.totalParams.toLocaleString('en-US');
    if (!params.startsWith(want)) throw new Error(`shows ${params}, core says ${want}`);
    await treeRows().filter({ hasText: ptName }).first().waitFor({ timeout: 10_000 });
    await screenshot('pytorch-overview-via-open-checkpoint');
    return `${params} parameters (${ptExp.formatDetail})`;
  });

  // 3d. A sharded checkpoint: its index.json opens in the overview by default, across both shards.
  await step(`${indexName} (2 shards) opens in the overview editor`, async () => {
    if (indexExp.error) throw new Error(`the core cannot open the index: ${indexExp.error}`);
    await closeAllEditors();
    await quickOpen(`sharded/${indexName}`);
    const frame = webview();
    await frame.locator('#file-name', { hasText: indexName }).waitFor({ timeout: 30_000 });
    const params = (await frame.locator('#total-params').innerText()).trim();
    const want = stHeaderParams.toLocaleString('en-US');
    if (!params.startsWith(want)) throw new Error(`shows ${params}, the unsharded header says ${want}`);
    const files = Number((await frame.locator('#file-count').innerText()).trim());
    if (files < 2) throw new Error(`file count ${files}`);
    const shardFiles = [...new Set(await frame.locator('tr.tensor-row td.file').allInnerTexts())].sort();
    if (shardFiles.join(',') !== 'model-00001-of-00002.safetensors,model-00002-of-00002.safetensors') throw new Error(`File column lists ${shardFiles.join(', ')}`);
    await screenshot('sharded-index-overview');
    return `${params} parameters over ${files} files (${indexExp.formatDetail})`;
  });

  // 3e. .onnx is registered with priority "option": it opens elsewhere by default, and the overview
  // is offered by "Reopen Editor With…".
  await step(`${onnxName} is offered "Reopen Editor With… Tensor Scalpel Overview"`, async () => {
    await closeAllEditors();
    await quickOpen(onnxName);
    await page.locator('.tabs-container .tab', { hasText: onnxName }).first().waitFor({ timeout: 15_000 });
    if (await page.locator('iframe.webview.ready').count() > 0) {
      const name = await webview().locator('#file-name').innerText({ timeout: 2_000 }).catch(() => '');
      if (name.includes(onnxName)) throw new Error('.onnx opened in the overview by default (priority should be "option")');
    }
    await runCommand('View: Reopen Editor With...');
    const pick = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Tensor Scalpel Overview' }).first();
    await pick.waitFor({ timeout: 10_000 });
    await pick.click();
    const frame = webview();
    await frame.locator('#file-name', { hasText: onnxName }).waitFor({ timeout: 30_000 });
    const params = (await frame.locator('#total-params').innerText()).trim();
    const want = onnxExp.totalParams.toLocaleString('en-US');
    if (!params.startsWith(want)) throw new Error(`shows ${params}, core says ${want}`);
    await screenshot('onnx-overview-reopened-with');
    return `${params} parameters (${onnxExp.formatDetail})`;
  });

  // 4. A command from the palette and its effect on the tree.
  await step('palette: Tensor Scalpel: Filter Models filters the tree', async () => {
    await runCommand('Tensor Scalpel: Filter Models');
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ timeout: 10_000 });
    await input.fill('attn_q');
    await page.keyboard.press('Enter');
    const sampleRow = treeRows().filter({ hasText: 'stories260K.gguf' }).first();
    const want = `${sampleExp.tensorNames.filter((n) => n.includes('attn_q')).length} of ${sampleExp.tensorNames.length} tensors match`;
    await sampleRow.filter({ hasText: want }).waitFor({ timeout: 10_000 });
    const message = (await view.innerText()).replace(/\s+/g, ' ');
    if (!message.includes('Filter "attn_q"')) throw new Error(`view message missing: ${message.slice(0, 300)}`);
    const ffn = await treeRows().filter({ hasText: 'ffn_down' }).count();
    if (ffn !== 0) throw new Error('ffn_down rows still shown under the filter');
    await screenshot('tree-filtered');
    await runCommand('Tensor Scalpel: Clear Filter');
    await sampleRow.filter({ hasText: 'params' }).waitFor({ timeout: 10_000 });
    return `sample row reads "${want}"; cleared again`;
  });

  // 4b. Refresh and Remove Model from the view's own buttons.
  await step('Refresh re-reads every model; Remove Model drops one from the tree', async () => {
    const before = await treeRows().filter({ hasText: ptName }).count();
    if (before === 0) throw new Error(`${ptName} not in the tree`);
    // With one view in the container, its title actions sit in the side bar's title.
    await page.locator('.part.sidebar .composite.title').hover();
    await page.locator('.part.sidebar .title-actions .action-label[aria-label="Refresh"]').first().click();
    // Refresh re-renders the rows as each model is read again; let it settle before aiming at a row.
    await sleep(1000);
    let removed = false;
    for (let attempt = 0; attempt < 3 && !removed; attempt++) {
      const row = treeRows().filter({ hasText: ptName }).first();
      await row.hover();
      await row.locator('.action-label[aria-label="Remove Model"], .action-label[aria-label="Tensor Scalpel: Remove Model"]').first().click();
      removed = await treeRows().filter({ hasText: ptName }).first().waitFor({ state: 'detached', timeout: 4_000 }).then(() => true, () => false);
    }
    if (!removed) throw new Error(`${ptName} still listed after clicking its Remove Model button`);
    await screenshot('after-remove-model');
    const left = (await treeRows().locator('.label-name').allInnerTexts()).filter((t) => /\.(gguf|safetensors|pt)$/.test(t.trim()));
    return `models left: ${left.join(', ')}`;
  });

  // 5. A truncated checkpoint: the reader's specific message, and Show Log.
  await step(`${truncName} shows the reader's error and Show Log`, async () => {
    if (!truncExp.error) throw new Error('the core opened the truncated file without error');
    await closeAllEditors();
    await quickOpen(truncName);
    const frame = webview();
    const msg = frame.locator('#error-message');
    await msg.waitFor({ timeout: 30_000 });
    const text = (await msg.innerText()).trim();
    if (text !== truncExp.error) throw new Error(`webview says "${text}", reader says "${truncExp.error}"`);
    await screenshot('truncated-error');
    await frame.locator('#show-log').click();
    const output = page.locator('.part.panel', { hasText: 'cannot open' });
    await output.first().waitFor({ timeout: 15_000 });
    await screenshot('truncated-show-log');
    await runCommand('View: Hide Panel');
    return text;
  });


  // --- The analysis views: model map, spectrum, bond-dimension editor, ablation picker -------------
  const picoRef = JSON.parse(readFileSync(path.resolve(ROOT, '../shared/reference/pico.spectra.json'), 'utf8'));
  const refByName = new Map(picoRef.tensors.map((t) => [t.name, t]));
  /** Relative error of the best rank-k approximation from the LAPACK reference: sqrt(sum_{i>k} s^2 / sum s^2). */
  const refError = (name, k) => {
    const s = refByName.get(name).singularValues;
    const total = s.reduce((a, v) => a + v * v, 0);
    let tail = 0;
    for (let i = k; i < s.length; i++) tail += s[i] * s[i];
    return Math.sqrt(tail / total);
  };
  const blockMatrices = picoRef.tensors.filter((t) => /^h\.\d+\./.test(t.name) && t.shape.length === 2);

  /** The webview (of several open) whose page has `selector`. */
  async function findWebview(selector, timeout = 30_000) {
    const end = Date.now() + timeout;
    while (Date.now() < end) {
      const n = await page.locator('iframe.webview.ready').count();
      for (let i = 0; i < n; i++) {
        const fl = page.frameLocator('iframe.webview.ready').nth(i).frameLocator('#active-frame');
        if (await fl.locator(selector).count().catch(() => 0) > 0) return fl;
      }
      await sleep(250);
    }
    throw new Error(`no webview shows ${selector} after ${timeout / 1000} s`);
  }

  /** Types a path into VS Code's simple file dialog (code-server has no native one) and accepts it. */
  async function typeIntoFileDialog(target) {
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ timeout: 10_000 });
    await sleep(500);
    for (let attempt = 0; attempt < 6; attempt++) {
      await input.fill(target);
      await sleep(300);
      if ((await input.inputValue()) !== target) continue;
      await page.keyboard.press('Enter');
      const gone = await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 3_000 }).then(() => true, () => false);
      if (gone) return;
    }
    throw new Error(`the file dialog did not accept ${target}`);
  }

  const num = (text) => Number(String(text).replace(/[^0-9.eE+-]/g, ''));

  let mapSeconds = 0;
  await step('model map: the scan fills one cell per 2-D block matrix, live', async () => {
    await closeAllEditors();
    await quickOpen(stName);
    const ov = await findWebview('#file-name');
    await ov.locator('#tab-map').click();
    await ov.locator('#scan-start').waitFor({ timeout: 10_000 });
    const before = await ov.locator('#model-map rect.cell.filled').count();
    const t0 = Date.now();
    await ov.locator('#scan-start').click();
    await ov.locator('#scan-progress[data-state="done"]').waitFor({ timeout: 90_000 });
    mapSeconds = (Date.now() - t0) / 1000;
    const filledBlock = await ov.locator('#model-map rect.cell.filled:not([data-block="none"])').count();
    const filledAll = await ov.locator('#model-map rect.cell.filled').count();
    if (filledBlock !== blockMatrices.length) throw new Error(`${filledBlock} block cells filled, the file has ${blockMatrices.length} 2-D block matrices`);
    if (filledAll !== picoRef.tensors.length) throw new Error(`${filledAll} cells filled, the reference has ${picoRef.tensors.length} matrices`);
    const rows = await ov.locator('#map-table tr.map-row').count();
    if (rows !== picoRef.tensors.length) throw new Error(`table has ${rows} rows`);
    const label = await ov.locator('#model-map').getAttribute('aria-label');
    if (!/Model map of/.test(label ?? '')) throw new Error(`map aria-label "${label}"`);
    const violations = await ov.locator('html').getAttribute('data-csp-violations');
    if (violations !== '0') throw new Error(`${violations} CSP violations`);
    await ov.locator(`#model-map rect.cell.filled[data-name="h.1.mlp.c_fc.weight"]`).hover();
    await ov.locator('#map-tooltip:not([hidden])').waitFor({ timeout: 5_000 });
    await screenshot('model-map-dark', { readme: 'model-map-dark', clip: 'editor' });
    return `${before} filled before, ${filledBlock} block + ${filledAll - filledBlock} other cells after ${mapSeconds.toFixed(1)} s`;
  });

  await step('spectrum view: click a map cell; drag and key the rank marker; readouts match the reference', async () => {
    const name = 'h.0.attn.c_attn.weight';
    const ov = await findWebview('#model-map');
    await ov.locator(`#model-map rect.cell.filled[data-name="${name}"]`).click();
    const sp = await findWebview('#readout-rank');
    await sp.locator('#spectrum-title', { hasText: name }).waitFor({ timeout: 20_000 });
    const check = async (how) => {
      const k = Number((await sp.locator('#readout-rank').innerText()).split(' ')[0]);
      const shown = num(await sp.locator('#readout-error').innerText());
      const want = refError(name, k);
      if (!(Math.abs(shown - want) <= 1e-3 * Math.max(want, 1e-3))) throw new Error(`${how}: rank ${k} error ${shown}, reference ${want}`);
      const [m, n] = refByName.get(name).shape;
      const params = num((await sp.locator('#readout-params').innerText()).split(' of ')[0]);
      if (params !== k * (m + n)) throw new Error(`${how}: params ${params}, expected ${k * (m + n)}`);
      const ratio = num(await sp.locator('#readout-ratio').innerText());
      if (Math.abs(ratio - (m * n) / (k * (m + n))) > 1e-3 * ratio) throw new Error(`${how}: ratio ${ratio}`);
      return { k, shown, want };
    };
    const box = await sp.locator('#chart-sv').boundingBox();
    if (!box) throw new Error('no chart box');
    // Drag from the middle to 70% of the plot width.
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.up();
    const a = await check('after drag');
    if (a.k <= 1) throw new Error(`drag left the marker at rank ${a.k}`);
    await sp.locator('#chart-sv').focus();
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowLeft');
    const b = await check('after 3 x ArrowLeft');
    if (b.k !== a.k - 3) throw new Error(`ArrowLeft x3 moved ${a.k} -> ${b.k}`);
    await page.keyboard.press('ArrowRight');
    const c = await check('after ArrowRight');
    if (c.k !== b.k + 1) throw new Error(`ArrowRight moved ${b.k} -> ${c.k}`);
    const outliers = await sp.locator('#chart-sv circle.outlier').count();
    const edge = await sp.locator('#chart-sv line.mp-edge').count();
    if (edge !== 1) throw new Error(`${edge} MP edge lines`);
    await screenshot('spectrum-dark', { readme: 'spectrum-dark', clip: 'editor' });
    return `drag -> k=${a.k} error ${a.shown} (ref ${a.want.toPrecision(6)}); keys -> k=${b.k}, ${c.k} error ${c.shown} (ref ${c.want.toPrecision(6)}); ${outliers} outliers marked`;
  });

  const compressedName = 'pico.compressed.safetensors';
  await step('bond-dimension editor: budgets drive the totals; Write Compressed Model… writes and reopens', async () => {
    await page.locator('.tabs-container .tab', { hasText: stName }).first().click();
    const ov = await findWebview('#open-compress');
    await ov.locator('#open-compress').click();
    const ed = await findWebview('#compress-table');
    await ed.locator('#compress-progress').waitFor({ state: 'detached', timeout: 60_000 });
    const rows = ed.locator('#compress-table tr.tensor-row');
    const count = await rows.count();
    if (count !== picoRef.tensors.length) throw new Error(`${count} rows, expected ${picoRef.tensors.length}`);
    // Global chi = 8: the totals are sum over the selected rows of o1 i1 chi + chi o2 i2 (2 sites, chi capped by the cut).
    await ed.locator('#budget-mode').selectOption('chi');
    await ed.locator('#global-chi').fill('8');
    let wantBefore = 0, wantAfter = 0;
    for (let i = 0; i < count; i++) {
      const r = rows.nth(i);
      if (!(await r.locator('input[type=checkbox]').isChecked())) continue;
      const [outF, inF] = await r.locator('input[type=text]').evaluateAll((els) => els.map((e) => e.value.split('×').map(Number)));
      const name = await r.getAttribute('data-name');
      const [m, n] = refByName.get(name).shape;
      const chi = Math.min(8, outF[0] * inF[0], outF[1] * inF[1]);
      wantBefore += m * n;
      wantAfter += outF[0] * inF[0] * chi + chi * outF[1] * inF[1];
    }
    const before = num(await ed.locator('#total-before').innerText());
    const after = num(await ed.locator('#total-after').innerText());
    if (before !== wantBefore || after !== wantAfter) throw new Error(`chi 8: totals ${before} -> ${after}, expected ${wantBefore} -> ${wantAfter}`);
    if (wantBefore !== blockMatrices.reduce((a, t) => a + t.shape[0] * t.shape[1], 0)) throw new Error('default selection is not the block matrices');
    // Parameter budget 25%: the kept parameters fit.
    await ed.locator('#budget-mode').selectOption('params');
    await ed.locator('#param-budget').fill('25');
    const after25 = num(await ed.locator('#total-after').innerText());
    if (!(after25 <= 0.25 * wantBefore && after25 > 0.15 * wantBefore)) throw new Error(`25% budget keeps ${after25} of ${wantBefore}`);
    // Error budget 0.2: every selected row's error is within it.
    await ed.locator('#budget-mode').selectOption('error');
    await ed.locator('#error-budget').fill('0.2');
    const errs = await ed.locator('#compress-table tr.tensor-row td:last-child').allInnerTexts();
    const worst = Math.max(...errs.map(Number).filter(Number.isFinite));
    if (!(worst <= 0.2)) throw new Error(`error budget 0.2 but a row shows ${worst}`);
    const maxShown = num(await ed.locator('#max-error').innerText());
    await ed.locator('#budget-mode').selectOption('params');
    await ed.locator('#param-budget').fill('50');
    await screenshot('compress-editor-dark', { readme: 'compress-editor-dark', clip: 'editor' });
    // Write it.
    await ed.locator('#write').click();
    await typeIntoFileDialog(path.join(dirs.ws, compressedName));
    await ed.locator('#open-result:not([hidden])').waitFor({ timeout: 120_000 });
    const status = await ed.locator('#write-status').innerText();
    if (!/^Wrote /.test(status)) throw new Error(`status "${status}"`);
    if (!existsSync(path.join(dirs.ws, compressedName))) throw new Error('no output file');
    await screenshot('compress-written-dark');
    await runCommand('Notifications: Clear All Notifications').catch(() => undefined);
    await ed.locator('#open-result').click();
    const re = await findWebview(`#file-name:text("${compressedName}")`, 30_000);
    const params = num((await re.locator('#total-params').innerText()).split(' ')[0]);
    const summaryAfter = num(/→ ([\d,]+)/.exec(status)?.[1] ?? 'NaN');
    if (params !== summaryAfter) throw new Error(`the reopened file has ${params} parameters, the summary said ${summaryAfter}`);
    const fileKb = (statSync(path.join(dirs.ws, compressedName)).size / 1024).toFixed(0);
    return `chi 8: ${wantBefore} -> ${wantAfter}; 25%: ${after25}; error 0.2: worst row ${worst} (max ${maxShown}); wrote ${compressedName} (${fileKb} KiB), reopened: ${params} parameters — ${status}`;
  });

  await step('ablation picker: residual writers pre-selected; preview of u1 removed from its own tensor matches s1 / ||W||', async () => {
    await closeAllEditors();
    await quickOpen(stName);
    await findWebview('#file-name');
    await runCommand('Tensor Scalpel: Ablate…');
    const ab = await findWebview('#writer-table');
    const names = await ab.locator('#writer-table tr.writer-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-name')));
    const want = [...[0, 1, 2, 3].flatMap((i) => [`h.${i}.attn.c_proj.weight`, `h.${i}.mlp.c_proj.weight`]), 'wte.weight'];
    const missing = want.filter((n) => !names.includes(n));
    if (missing.length) throw new Error(`writers lack ${missing.join(', ')}; shown: ${names.join(', ')}`);
    const checked = await ab.locator('#writer-table tr.writer-row input[type=checkbox]:checked').count();
    if (checked < want.length) throw new Error(`${checked} writers pre-selected`);
    const tensor = 'h.0.attn.c_proj.weight';
    await ab.locator('#svd-tensor').selectOption(tensor);
    await ab.locator('#svd-count').fill('2');
    await ab.locator('#add-singular').click();
    await ab.locator('#candidate-table tr.candidate-row').first().waitFor({ timeout: 30_000 });
    await ab.locator('#candidate-table tr.candidate-row input[type=checkbox]').first().check();
    await ab.locator('#preview').click();
    const cell = ab.locator(`#writer-table tr.writer-row[data-name="${tensor}"] td.num`).first();
    await ab.locator(`#writer-table tr.writer-row[data-name="${tensor}"] td.num:text("%")`).first().waitFor({ timeout: 30_000 });
    const shown = num(await cell.innerText()) / 100;
    const s = refByName.get(tensor).singularValues;
    const expectFrac = s[0] / Math.sqrt(s.reduce((a, v) => a + v * v, 0));
    if (Math.abs(shown - expectFrac) > 2e-3 * expectFrac) throw new Error(`preview ${shown}, reference s1/||W|| = ${expectFrac}`);
    await screenshot('ablation-picker-dark', { readme: 'ablation-picker-dark', clip: 'editor' });
    return `${names.length} writers (${checked} pre-selected); u1 of ${tensor} removes ${(shown * 100).toFixed(2)}% of its norm (reference ${(expectFrac * 100).toFixed(2)}%)`;
  });


  await step('model map exports: CSV and PNG through the save dialog', async () => {
    await closeAllEditors();
    await quickOpen(stName);
    const ov = await findWebview('#file-name');
    if (await ov.locator('#model-map').count() === 0) await ov.locator('#tab-map').click();
    await ov.locator('#model-map rect.cell.filled').first().waitFor({ timeout: 20_000 });
    const csvPath = path.join(dirs.ws, 'pico.map.csv');
    await ov.locator('#map-export-csv').click();
    await typeIntoFileDialog(csvPath);
    for (let i = 0; i < 50 && !existsSync(csvPath); i++) await sleep(100);
    const lines = readFileSync(csvPath, 'utf8').trim().split(/\r?\n/);
    if (lines.length !== picoRef.tensors.length + 1) throw new Error(`CSV has ${lines.length} lines`);
    const header = lines[0].split(',');
    const iEnt = header.indexOf('normalized_entropy');
    const row = lines.find((l) => l.startsWith('h.0.attn.c_attn.weight,')).split(',');
    const s = refByName.get('h.0.attn.c_attn.weight').singularValues;
    const tot = s.reduce((a, v) => a + v * v, 0);
    const ent = -s.reduce((a, v) => { const p = (v * v) / tot; return p > 0 ? a + p * Math.log(p) : a; }, 0) / Math.log(s.length);
    if (Math.abs(Number(row[iEnt]) - ent) > 1e-5) throw new Error(`CSV normalised entropy ${row[iEnt]}, reference ${ent}`);
    const pngPath = path.join(dirs.ws, 'pico.map.png');
    await ov.locator('#map-export-png').click();
    await typeIntoFileDialog(pngPath);
    for (let i = 0; i < 50 && !existsSync(pngPath); i++) await sleep(100);
    const png = readFileSync(pngPath);
    if (png.subarray(1, 4).toString('latin1') !== 'PNG') throw new Error('not a PNG');
    const width = png.readUInt32BE(16), height = png.readUInt32BE(20);
    return `CSV ${lines.length - 1} rows (normalised entropy of h.0.attn.c_attn ${Number(row[iEnt]).toFixed(6)} = reference ${ent.toFixed(6)}); PNG ${width}x${height}, ${png.length} bytes`;
  });

  await step('Models tree context menu: Analyze Spectrum on a tensor opens its spectrum', async () => {
    await closeAllEditors();
    const name = 'h.0.mlp.c_fc.weight';
    let row = treeRows().filter({ hasText: name }).first();
    if (await row.count() === 0) {
      const model = treeRows().filter({ hasText: stName }).first();
      if (await model.getAttribute('aria-expanded') !== 'true') await model.locator('.monaco-tl-twistie').click();
      const block = treeRows().filter({ hasText: /^\s*block 0/ }).last();
      await block.waitFor({ timeout: 10_000 });
      if (await block.getAttribute('aria-expanded') !== 'true') await block.locator('.monaco-tl-twistie').click();
      row = treeRows().filter({ hasText: name }).first();
    }
    await row.waitFor({ timeout: 10_000 });
    await row.click({ button: 'right' });
    const item = page.locator('.monaco-menu .action-item', { hasText: /^\s*Analyze Spectrum\s*$/ }).first();
    await item.waitFor({ timeout: 10_000 });
    const items = (await page.locator('.monaco-menu .action-label').allInnerTexts()).map((t) => t.trim()).filter(Boolean);
    for (const want of ['Analyze Spectrum', 'Add Spectrum to Comparison', 'Compress…', 'Ablate…']) {
      if (!items.includes(want)) throw new Error(`context menu lacks "${want}": ${items.join(', ')}`);
    }
    // Menus run their action on mouse-up over the item's anchor; hover it, then accept with Enter.
    await item.locator('.action-menu-item').hover();
    await page.keyboard.press('Enter');
    const sp = await findWebview('#spectrum-title');
    await sp.locator('#spectrum-title', { hasText: name }).waitFor({ timeout: 20_000 });
    return `menu: ${items.join(', ')}`;
  });

  // 6. Light theme: the overview's text stays readable.
  await step('light theme: overview body text contrast >= 4.5', async () => {
    await closeAllEditors();
    await pickTheme('Light Modern', 'vs');
    await quickOpen(stName);
    const c = await bodyContrast();
    await screenshot('safetensors-overview-light');
    if (c.ratio < 4.5 || c.tdRatio < 4.5) throw new Error(`contrast ${c.ratio.toFixed(2)} / ${c.tdRatio.toFixed(2)} (${c.fg} on ${c.bg})`);
    if (darkContrast && c.bg === darkContrast.bg) throw new Error(`background did not change with the theme (${c.bg})`);
    return `${c.fg} on ${c.bg}: ${c.ratio.toFixed(2)}:1 (tensor names ${c.tdRatio.toFixed(2)}:1)`;
  });

  await step('light theme: model map, spectrum, bond-dimension editor and ablation picker', async () => {
    await closeAllEditors();
    await quickOpen(stName);
    const ov = await findWebview('#file-name');
    if (await ov.locator('#model-map').count() === 0) await ov.locator('#tab-map').click();
    await ov.locator('#model-map rect.cell.filled').first().waitFor({ timeout: 20_000 });
    const filled = await ov.locator('#model-map rect.cell.filled').count();
    await screenshot('model-map-light');
    await ov.locator('#model-map rect.cell.filled[data-name="h.2.mlp.c_proj.weight"]').click();
    const sp = await findWebview('#readout-rank');
    await sp.locator('#spectrum-title', { hasText: 'h.2.mlp.c_proj.weight' }).waitFor({ timeout: 20_000 });
    await screenshot('spectrum-light', { readme: 'spectrum-light', clip: 'editor' });
    await page.locator('.tabs-container .tab', { hasText: stName }).first().click();
    const ov2 = await findWebview('#open-compress');
    await ov2.locator('#open-compress').click();
    const ed = await findWebview('#compress-table');
    await ed.locator('#compress-progress').waitFor({ state: 'detached', timeout: 60_000 });
    await screenshot('compress-editor-light');
    await page.locator('.tabs-container .tab', { hasText: stName }).first().click();
    const ov3 = await findWebview('#open-ablate');
    await ov3.locator('#open-ablate').click();
    await findWebview('#writer-table');
    await screenshot('ablation-picker-light');
    return `${filled} map cells filled after reopening (scan state kept by the host)`;
  });

  await step('high-contrast theme: overview body text contrast >= 4.5', async () => {
    await closeAllEditors();
    await pickTheme('Dark High Contrast', 'hc-black');
    await quickOpen(ggufName);
    const c = await bodyContrast();
    await screenshot('gguf-overview-high-contrast');
    if (c.ratio < 4.5) throw new Error(`contrast ${c.ratio.toFixed(2)} (${c.fg} on ${c.bg})`);
    return `${c.fg} on ${c.bg}: ${c.ratio.toFixed(2)}:1`;
  });

  // 7. The extension's log file holds the error; no webview or workbench script errors.
  await step('the LogOutputChannel file records the error', async () => {
    const logs = [];
    const walk = (d) => { for (const n of readdirSync(d)) { const p = path.join(d, n); if (statSync(p).isDirectory()) walk(p); else if (/Tensor Scalpel/.test(n)) logs.push(p); } };
    walk(path.join(dirs.user, 'logs'));
    if (logs.length === 0) throw new Error('no "Tensor Scalpel" log file under the user-data logs');
    const text = logs.map((f) => readFileSync(f, 'utf8')).join('\n');
    if (!text.includes(truncExp.error)) throw new Error(`log lacks the error; it reads: ${text.slice(-600)}`);
    if (!/\[error\]/.test(text)) throw new Error('no [error] line');
    if (!/refreshed \d+ model\(s\)/.test(text)) throw new Error('Refresh left no trace in the log');
    return path.relative(dirs.user, logs[0]);
  });

  // 7b. The in-extension-host tests (test/extension/index.ts -> out/test/index.js), in a second window.
  await step('in-extension-host tests', async () => {
    if (!existsSync(path.join(ROOT, 'out/test/index.js'))) throw new Error('out/test/index.js not built');
    const testPayload = JSON.stringify([
      ['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${ROOT}`],
      ['extensionTestsPath', `vscode-remote://127.0.0.1:${port}${ROOT}/out/test/index.js`],
    ]);
    const testPage = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await testPage.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.ws)}&payload=${encodeURIComponent(testPayload)}`);
    for (let i = 0; i < 600 && !existsSync(inhostResults); i++) await sleep(100);
    if (!existsSync(inhostResults)) throw new Error('no results file after 60 s');
    await sleep(200);
    const inhost = JSON.parse(readFileSync(inhostResults, 'utf8'));
    await testPage.close().catch(() => undefined);
    for (const r of inhost) record(`  in host: ${r.name}`, r.ok, r.ok ? r.detail : r.detail.split('\n').slice(0, 3).join(' | '));
    const bad = inhost.filter((r) => !r.ok).length;
    if (bad) throw new Error(`${bad} of ${inhost.length} failed`);
    return `${inhost.length} tests`;
  });


  // --- The Evaluate panel (src/extension/evaluatePanel.ts, webview/evaluate) -----------------------
  // Expected numbers from the CLI (the same core), computed before driving the UI.
  const sampleModel = path.join(ROOT, 'media/sample/stories260K.gguf');
  const cli = (args) => {
    const r = spawnSync(process.execPath, ['out/cli.js', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`cli ${args.join(' ')}: ${(r.stderr || r.stdout).slice(-600)}`);
    return JSON.parse(r.stdout);
  };
  let evalExp;
  try {
    evalExp = {
      self: cli(['eval', sampleModel, '--against', sampleModel, '--tokens', '512', '--sample-tokens', '0', '--json']),
      q8: cli(['eval', sampleModel, '--against', path.join(dirs.ws, ggufName), '--tokens', '512', '--sample-tokens', '0', '--json']),
      ropeHalf: cli(['eval', sampleModel, '--rope-order', 'half', '--tokens', '512', '--sample-tokens', '0', '--json']),
      dir: cli(['direction', sampleModel, '--a', path.join(ROOT, 'media/sample/prompts/a.txt'), '--b', path.join(ROOT, 'media/sample/prompts/b.txt'), '--out', path.join(tmp, 'cli-direction.npy'), '--json']),
    };
  } catch (e) {
    record('evaluate: expected values from the CLI', false, String(e.message ?? e));
  }
  /** A readout's exact value (the dd's data-value) and its shown text. */
  const readoutOf = async (frame, id) => {
    const el = frame.locator(`#${id}`);
    return { value: Number(await el.getAttribute('data-value')), text: (await el.innerText()).trim() };
  };
  const relClose = (a, b, tol) => Math.abs(a - b) <= tol * Math.max(Math.abs(b), 1e-12);
  /** Clicks Run and waits for the results (the progress line disappears, the readouts appear). */
  async function runEvaluation(ev) {
    const before = await ev.locator('#results').count() ? await ev.locator('#results').innerText() : '';
    await ev.locator('#run').click();
    await ev.locator('#eval-progress').waitFor({ state: 'detached', timeout: 90_000 });
    await ev.locator('#m-perplexity').waitFor({ timeout: 10_000 });
    const err = ev.locator('#evaluate-error');
    if (await err.count()) throw new Error(`evaluation failed: ${await err.innerText()}`);
    return before;
  }

  await step('evaluate panel: the sample model against itself — top-1 agreement 1, KL 0, identical generations', async () => {
    if (!evalExp) throw new Error('no expected values');
    await closeAllEditors();
    await pickTheme('Dark Modern', 'vs-dark');
    // From the Models tree's context menu on the sample model.
    const row = treeRows().filter({ hasText: /^\s*stories260K\.gguf/ }).first();
    await row.waitFor({ timeout: 10_000 });
    await row.click({ button: 'right' });
    const item = page.locator('.monaco-menu .action-item', { hasText: /^\s*Evaluate Model…\s*$/ }).first();
    await item.waitFor({ timeout: 10_000 });
    await item.locator('.action-menu-item').hover();
    await page.keyboard.press('Enter');
    const ev = await findWebview('#evaluate-title');
    await ev.locator('#evaluate-title', { hasText: 'stories260K.gguf' }).waitFor({ timeout: 10_000 });
    await ev.locator('#pick-against').click();
    await typeIntoFileDialog(sampleModel);
    await ev.locator('#value-against', { hasText: 'stories260K.gguf' }).waitFor({ timeout: 10_000 });
    await runEvaluation(ev);
    const ppl = await readoutOf(ev, 'm-perplexity'), agree = await readoutOf(ev, 'm-agreement'), kl = await readoutOf(ev, 'm-kl');
    if (agree.value !== 1) throw new Error(`top-1 agreement ${agree.value} (${agree.text}) against itself`);
    if (Math.abs(kl.value) > 1e-9) throw new Error(`KL ${kl.value} against itself`);
    if (!relClose(ppl.value, evalExp.self.perplexity, 1e-9)) throw new Error(`perplexity ${ppl.value}, CLI ${evalExp.self.perplexity}`);
    const genM = await ev.locator('#gen-model').innerText(), genA = await ev.locator('#gen-against').innerText();
    if (!genA.includes('Once upon a time')) throw new Error(`the original's generation reads "${genA.slice(0, 80)}"`);
    if (genM !== genA) throw new Error('the generations of one model differ');
    const div = await ev.locator('#divergence').getAttribute('data-index');
    if (div !== '-1') throw new Error(`divergence index ${div}`);
    const violations = await ev.locator('html').getAttribute('data-csp-violations');
    if (violations !== '0') throw new Error(`${violations} CSP violations`);
    await screenshot('evaluate-self-dark');
    return `perplexity ${ppl.text} (CLI ${evalExp.self.perplexity.toFixed(4)}), agreement ${agree.text}, KL ${kl.text}; generation "${genA.slice(0, 40).replace(/\s+/g, ' ')}…"`;
  });

  await step(`evaluate panel: against ${ggufName} — agreement > 0.9, numbers equal the CLI's, first divergence marked`, async () => {
    if (!evalExp) throw new Error('no expected values');
    const ev = await findWebview('#evaluate-title');
    await ev.locator('#pick-against').click();
    await typeIntoFileDialog(path.join(dirs.ws, ggufName));
    await ev.locator('#value-against', { hasText: ggufName }).waitFor({ timeout: 10_000 });
    await ev.locator('#prompt').fill('Once upon a time, there was a little');
    await runEvaluation(ev);
    await ev.locator('.gen-column h3', { hasText: ggufName }).waitFor({ timeout: 10_000 });
    const ppl = await readoutOf(ev, 'm-perplexity'), agree = await readoutOf(ev, 'm-agreement'), kl = await readoutOf(ev, 'm-kl'), acc = await readoutOf(ev, 'm-accuracy');
    const e = evalExp.q8;
    if (!(agree.value > 0.9)) throw new Error(`top-1 agreement ${agree.value}`);
    if (!relClose(agree.value, e.top1Agreement, 1e-12)) throw new Error(`agreement ${agree.value}, CLI ${e.top1Agreement}`);
    if (!relClose(kl.value, e.klDivergence, 1e-6) || !(kl.value > 0)) throw new Error(`KL ${kl.value}, CLI ${e.klDivergence}`);
    if (!relClose(ppl.value, e.perplexity, 1e-9)) throw new Error(`perplexity ${ppl.value}, CLI ${e.perplexity}`);
    if (!relClose(acc.value, e.accuracy, 1e-12)) throw new Error(`accuracy ${acc.value}, CLI ${e.accuracy}`);
    for (const id of ['m-tps', 'm-ms']) if (!((await readoutOf(ev, id)).value > 0)) throw new Error(`${id} not positive`);
    const genM = await ev.locator('#gen-model').innerText(), genA = await ev.locator('#gen-against').innerText();
    if (!genA.startsWith('Once upon a time, there was a little')) throw new Error(`the original's generation reads "${genA.slice(0, 80)}"`);
    if (genM.length < 60) throw new Error(`the model's generation reads "${genM}"`);
    // The marked token (if any) is where the two id sequences first differ.
    const div = Number(await ev.locator('#divergence').getAttribute('data-index'));
    const idsM = await ev.locator('#gen-model .token[data-id]').evaluateAll((s) => s.map((x) => Number(x.getAttribute('data-id'))));
    const idsA = await ev.locator('#gen-against .token[data-id]').evaluateAll((s) => s.map((x) => Number(x.getAttribute('data-id'))));
    let first = -1;
    for (let i = 0; i < Math.max(idsM.length, idsA.length); i++) if (idsM[i] !== idsA[i]) { first = i; break; }
    if (div !== first) throw new Error(`divergence shown at ${div}, the ids first differ at ${first}`);
    if (first >= 0 && first < idsM.length && await ev.locator(`#gen-model .token.diverge[data-index="${first}"]`).count() !== 1) throw new Error('the diverging token is not highlighted');
    await screenshot('evaluate-q8-dark');
    return `perplexity ${ppl.text}, accuracy ${acc.text}, KL ${kl.text}, agreement ${agree.text} (CLI ${e.top1Agreement}); ${idsM.length}/${idsA.length} tokens generated, first divergence ${first}`;
  });

  await step('evaluate panel: the RoPE-order choice reaches the graph — "rotate half" on the GGUF equals the CLI with --rope-order half', async () => {
    if (!evalExp) throw new Error('no expected values');
    const ev = await findWebview('#evaluate-title');
    const used = await ev.locator('#rope-used').innerText();
    if (!/interleaved pairs \(GGUF/.test(used)) throw new Error(`with "as the file says" the result reads "${used}"`);
    await ev.locator('#clear-against').click();
    await ev.locator('#rope-order').selectOption('half');
    await runEvaluation(ev);
    const ppl = await readoutOf(ev, 'm-perplexity');
    const half = await ev.locator('#rope-used').innerText();
    if (!/rotate half \(option\)/.test(half)) throw new Error(`the result reads "${half}"`);
    if (!relClose(ppl.value, evalExp.ropeHalf.perplexity, 1e-9)) throw new Error(`perplexity ${ppl.value}, CLI --rope-order half ${evalExp.ropeHalf.perplexity}`);
    if (!(ppl.value > 1.5 * evalExp.self.perplexity)) throw new Error(`the wrong RoPE order should hurt: ${ppl.value} vs ${evalExp.self.perplexity}`);
    await ev.locator('#rope-order').selectOption('auto');
    await ev.locator('#pick-against').click();
    await typeIntoFileDialog(path.join(dirs.ws, ggufName));
    await ev.locator('#value-against', { hasText: ggufName }).waitFor({ timeout: 10_000 });
    await runEvaluation(ev); // leave the panel as the steps after this one expect it: a comparison result
    return `${used.trim()}; rotate half: perplexity ${ppl.text} (CLI ${evalExp.ropeHalf.perplexity.toFixed(4)}, file's own order ${evalExp.self.perplexity.toFixed(4)})`;
  });

  let offeredId = '';
  await step('evaluate panel: directions of the default prompt files — 6 layers, equal to the CLI; save .npy; offer to the picker', async () => {
    if (!evalExp) throw new Error('no expected values');
    const ev = await findWebview('#evaluate-title');
    await ev.locator('#value-promptA', { hasText: 'a.txt' }).waitFor({ timeout: 5_000 });
    await ev.locator('#compute-directions').click();
    await ev.locator('#dir-table tr.dir-row').first().waitFor({ timeout: 90_000 });
    const rows = await ev.locator('#dir-table tr.dir-row').count();
    if (rows !== 6) throw new Error(`${rows} rows, expected 6 (5 blocks + final)`);
    const shown = await ev.locator('#dir-table tr.dir-row').evaluateAll((rs) => rs.map((r) => [...r.querySelectorAll('td.num')].map((td) => Number(td.textContent))));
    for (const l of evalExp.dir.layers) {
      const [layer, norm, sep] = shown[l.layer];
      if (layer !== l.layer || !relClose(norm, l.norm, 1e-3) || Math.abs(sep - l.separation) > 1e-3 + 1e-3 * Math.abs(l.separation)) throw new Error(`layer ${l.layer}: shown ${norm} / ${sep}, CLI ${l.norm} / ${l.separation}`);
    }
    const chosen = await ev.locator('#dir-table tr.dir-row.selected').getAttribute('data-layer');
    if (Number(chosen) !== evalExp.dir.chosenLayer) throw new Error(`pre-selected layer ${chosen}, CLI best ${evalExp.dir.chosenLayer}`);
    // Save through the dialog: the unit vector of the chosen layer, as the CLI writes it.
    const npyPath = path.join(dirs.ws, 'evaluate-direction.npy');
    await ev.locator('#save-direction').click();
    await typeIntoFileDialog(npyPath);
    await ev.locator('#dir-status', { hasText: 'Saved' }).waitFor({ timeout: 10_000 });
    const a = readFileSync(npyPath), b = readFileSync(path.join(tmp, 'cli-direction.npy'));
    if (Buffer.compare(a, b) !== 0) throw new Error(`the saved .npy (${a.length} bytes) differs from the CLI's (${b.length} bytes)`);
    // Keyboard: choose another layer with the arrow keys on the radio group.
    await ev.locator('#dir-table tr.dir-row.selected input[type=radio]').focus();
    await page.keyboard.press(Number(chosen) === 0 ? 'ArrowDown' : 'ArrowUp');
    await ev.locator(`#dir-table tr.dir-row.selected:not([data-layer="${chosen}"])`).waitFor({ timeout: 5_000 });
    const layer = Number(await ev.locator('#dir-table tr.dir-row.selected').getAttribute('data-layer'));
    await ev.locator('#offer-direction').click();
    await ev.locator('#dir-status[data-id^="evaluate:"]').waitFor({ timeout: 10_000 });
    offeredId = await ev.locator('#dir-status').getAttribute('data-id');
    if (!offeredId.endsWith(`:${layer}`)) throw new Error(`offered id ${offeredId}, chosen layer ${layer}`);
    await screenshot('evaluate-directions-dark');
    return `norms ${shown.map((r) => r[1]).join(', ')}; best layer ${chosen}; saved ${a.length} bytes = CLI's; offered layer ${layer} as ${offeredId}`;
  });

  await step('evaluate panel: the offered direction is a candidate in the ablation picker', async () => {
    if (!offeredId) throw new Error('nothing was offered');
    const row = treeRows().filter({ hasText: /^\s*stories260K\.gguf/ }).first();
    await row.click({ button: 'right' });
    const item = page.locator('.monaco-menu .action-item', { hasText: /^\s*Ablate…\s*$/ }).first();
    await item.waitFor({ timeout: 10_000 });
    await item.locator('.action-menu-item').hover();
    await page.keyboard.press('Enter');
    const ab = await findWebview('#candidate-table');
    const cand = ab.locator(`#candidate-table tr.candidate-row[data-id="computed:${offeredId}"]`);
    await cand.waitFor({ timeout: 20_000 });
    const text = (await cand.innerText()).replace(/\s+/g, ' ').trim();
    if (!/computed/.test(text) || !/mean\(a\) − mean\(b\)/.test(text)) throw new Error(`candidate row reads "${text}"`);
    await screenshot('evaluate-offered-in-ablation-picker');
    return text.slice(0, 160);
  });

  await step('evaluate panel: state restored after the tab is hidden; light theme', async () => {
    // The Evaluate tab was hidden behind the picker (its page is dropped): results come back from getState.
    await page.locator('.tabs-container .tab', { hasText: 'Evaluate: stories260K.gguf' }).first().click();
    const ev = await findWebview('#evaluate-title');
    await ev.locator('#m-agreement').waitFor({ timeout: 10_000 });
    await ev.locator('#dir-table tr.dir-row').first().waitFor({ timeout: 10_000 });
    const against = (await ev.locator('#value-against').innerText()).trim();
    if (against !== ggufName) throw new Error(`restored "Compare against" reads ${against}`);
    await pickTheme('Light Modern', 'vs');
    const ev2 = await findWebview('#evaluate-title');
    await ev2.locator('#m-agreement').waitFor({ timeout: 10_000 });
    const c = await ev2.locator('body').evaluate((body) => {
      const cs = getComputedStyle(body);
      const dd = document.querySelector('#m-perplexity');
      return { fg: cs.color, bg: cs.backgroundColor, dd: dd ? getComputedStyle(dd).color : cs.color };
    });
    const ratio = contrastRatio(c.dd, c.bg);
    await screenshot('evaluate-light');
    await ev2.locator('#directions').scrollIntoViewIfNeeded();
    await screenshot('evaluate-directions-light');
    if (ratio < 4.5) throw new Error(`readout contrast ${ratio.toFixed(2)} (${c.dd} on ${c.bg})`);
    return `restored; light readouts ${c.dd} on ${c.bg}: ${ratio.toFixed(2)}:1`;
  });

  await step('evaluate panel: a model without a tokenizer shows the error and takes a vocabulary file', async () => {
    const dir = path.join(dirs.ws, 'notok');
    mkdirSync(dir, { recursive: true });
    copyFileSync(path.join(FIXTURES, 'stories260k', ptName), path.join(dir, ptName));
    copyFileSync(path.join(FIXTURES, 'stories260k', 'meta.json'), path.join(dir, 'meta.json'));
    copyFileSync(path.join(FIXTURES, 'stories260k', 'vocab.json'), path.join(dirs.ws, 'vocab.json'));
    await closeAllEditors();
    await runCommand('Tensor Scalpel: Open Checkpoint…');
    await typeIntoFileDialog(path.join(dir, ptName));
    await webview().locator('#file-name', { hasText: ptName }).waitFor({ timeout: 30_000 });
    await runCommand('Tensor Scalpel: Evaluate Model…');
    const ev = await findWebview('#evaluate-title');
    await ev.locator('#evaluate-title', { hasText: ptName }).waitFor({ timeout: 10_000 });
    await ev.locator('#run').click();
    const err = ev.locator('#evaluate-error');
    await err.waitFor({ timeout: 60_000 });
    const text = (await err.innerText()).replace(/\s+/g, ' ');
    if (!/has no tokenizer/.test(text)) throw new Error(`error reads "${text}"`);
    await screenshot('evaluate-no-tokenizer-light');
    await err.locator('#pick-vocab').click();
    await typeIntoFileDialog(path.join(dirs.ws, 'vocab.json'));
    await ev.locator('#value-vocab', { hasText: 'vocab.json' }).waitFor({ timeout: 10_000 });
    await runEvaluation(ev);
    const ppl = await readoutOf(ev, 'm-perplexity');
    const want = cli(['eval', path.join(dir, ptName), '--vocab', path.join(dirs.ws, 'vocab.json'), '--tokens', '512', '--sample-tokens', '0', '--json']).perplexity;
    if (!relClose(ppl.value, want, 1e-9)) throw new Error(`perplexity ${ppl.value}, CLI with --vocab ${want}`);
    // Without the vocabulary but against an original that has one: the original's tokenizer is used.
    await ev.locator('#clear-vocab').click();
    await ev.locator('#value-vocab', { hasText: "the model's own" }).waitFor({ timeout: 5_000 });
    await ev.locator('#pick-against').click();
    await typeIntoFileDialog(sampleModel);
    await ev.locator('#value-against', { hasText: 'stories260K.gguf' }).waitFor({ timeout: 10_000 });
    await runEvaluation(ev);
    const agree = await readoutOf(ev, 'm-agreement');
    const wantAgree = cli(['eval', path.join(dir, ptName), '--against', sampleModel, '--tokens', '512', '--sample-tokens', '0', '--json']).top1Agreement;
    if (!relClose(agree.value, wantAgree, 1e-12)) throw new Error(`agreement with the sample ${agree.value}, CLI ${wantAgree}`);
    return `"${text.slice(0, 120)}…"; with vocab.json: perplexity ${ppl.text}; against the sample GGUF (its tokenizer): agreement ${agree.text}`;
  });

  await step(`evaluate panel: ${compressedName} against ${stName} — the first diverging token is highlighted`, async () => {
    if (!existsSync(path.join(dirs.ws, compressedName))) throw new Error(`${compressedName} was not written by the earlier step`);
    const e = cli(['eval', path.join(dirs.ws, compressedName), '--against', path.join(dirs.ws, stName), '--tokens', '512', '--sample-tokens', '0', '--json']);
    await closeAllEditors();
    await quickOpen(compressedName);
    await findWebview(`#file-name:text("${compressedName}")`, 30_000);
    await runCommand('Tensor Scalpel: Evaluate Model…');
    const ev = await findWebview('#evaluate-title');
    await ev.locator('#evaluate-title', { hasText: compressedName }).waitFor({ timeout: 10_000 });
    await ev.locator('#pick-against').click();
    await typeIntoFileDialog(path.join(dirs.ws, stName));
    await ev.locator('#value-against', { hasText: stName }).waitFor({ timeout: 10_000 });
    await runEvaluation(ev);
    const ppl = await readoutOf(ev, 'm-perplexity'), agree = await readoutOf(ev, 'm-agreement'), kl = await readoutOf(ev, 'm-kl');
    if (!relClose(ppl.value, e.perplexity, 1e-9) || !relClose(agree.value, e.top1Agreement, 1e-12) || !relClose(kl.value, e.klDivergence, 1e-6)) {
      throw new Error(`shown perplexity ${ppl.value}, agreement ${agree.value}, KL ${kl.value}; CLI ${e.perplexity}, ${e.top1Agreement}, ${e.klDivergence}`);
    }
    const div = Number(await ev.locator('#divergence').getAttribute('data-index'));
    const idsM = await ev.locator('#gen-model .token[data-id]').evaluateAll((s) => s.map((x) => Number(x.getAttribute('data-id'))));
    const idsA = await ev.locator('#gen-against .token[data-id]').evaluateAll((s) => s.map((x) => Number(x.getAttribute('data-id'))));
    let first = -1;
    for (let i = 0; i < Math.max(idsM.length, idsA.length); i++) if (idsM[i] !== idsA[i]) { first = i; break; }
    if (div !== first) throw new Error(`divergence shown at ${div}, the ids first differ at ${first}`);
    if (first < 0) throw new Error(`the compressed model (agreement ${agree.value}) generated exactly what the original did`);
    for (const g of ['gen-model', 'gen-against']) {
      if (first < (g === 'gen-model' ? idsM : idsA).length && await ev.locator(`#${g} .token.diverge[data-index="${first}"]`).count() !== 1) throw new Error(`#${g}: token ${first} is not highlighted`);
    }
    await ev.locator('#gen-model .token.diverge').first().scrollIntoViewIfNeeded();
    await screenshot('evaluate-divergence-light');
    await pickTheme('Dark Modern', 'vs-dark');
    await screenshot('evaluate-divergence-dark', { readme: 'evaluate-dark', clip: 'editor' });
    const marked = (await ev.locator('#gen-model .token.diverge').first().innerText()).trim();
    return `perplexity ${ppl.text} (original ${(await readoutOf(ev, 'o-perplexity')).text}), agreement ${agree.text}, KL ${kl.text}; first divergence at token ${first} ("${marked}")`;
  });

  // --- First five minutes: a window on an empty folder (no file of the user's anywhere) -----------
  // The welcome view's "Open Sample Model", then the walkthrough (package.json contributes.walkthroughs)
  // step by step through its own buttons. The same browser tab loads the new folder, so one window runs.
  const pkgJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const walkthrough = pkgJson.contributes.walkthroughs[0];
  const storiesRef = JSON.parse(readFileSync(path.resolve(ROOT, '../shared/reference/stories260k.spectra.json'), 'utf8'));
  const storiesRefByName = new Map(storiesRef.tensors.map((t) => [t.name, t]));
  const emptyWs = path.join(tmp, 'empty-folder');
  mkdirSync(emptyWs, { recursive: true });
  const sampleParams = sampleExp.totalParams.toLocaleString('en-US');
  let emptyWindow = false;
  const openEmptyWindow = async () => {
    if (emptyWindow) return;
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(emptyWs)}&payload=${encodeURIComponent(payload)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    emptyWindow = true;
  };
  /** The overview of the bundled sample is on screen with the core's parameter count. */
  const sampleOverviewShown = async () => {
    const ov = await findWebview('#file-name');
    await ov.locator('#file-name', { hasText: 'stories260K.gguf' }).waitFor({ timeout: 30_000 });
    const params = (await ov.locator('#total-params').innerText({ timeout: 20_000 })).trim();
    if (!params.startsWith(sampleParams)) throw new Error(`overview shows ${params}, core says ${sampleParams}`);
    return params;
  };

  await step('first five minutes: the welcome view\'s Open Sample Model works in an empty folder', async () => {
    await openEmptyWindow();
    const item = page.locator('.activitybar .action-item a[aria-label^="Tensor Scalpel"]').first();
    await item.waitFor({ timeout: 30_000 });
    if (await view.count() === 0 || !(await view.isVisible())) await item.click();
    const button = view.locator('.welcome-view-content a, .welcome-view-content .monaco-button', { hasText: 'Open Sample Model' }).first();
    await button.waitFor({ timeout: 30_000 });
    if (await treeRows().count() !== 0) throw new Error('the Models tree of a new folder is not empty');
    await button.click();
    await treeRows().filter({ hasText: 'stories260K.gguf' }).first().waitFor({ timeout: 30_000 });
    const params = await sampleOverviewShown();
    // The model came from the extension's own media/sample (the path under the overview's title), and
    // the folder is still empty: no file of the user's was needed or written.
    const where = (await (await findWebview('#file-name')).locator('header p.path').innerText()).trim();
    if (where !== path.join(ROOT, 'media/sample/stories260K.gguf')) throw new Error(`the overview shows ${where}`);
    const files = readdirSync(emptyWs);
    if (files.length) throw new Error(`the empty folder now holds ${files.join(', ')}`);
    await screenshot('empty-folder-sample-opened');
    // Back to an empty tree, so the walkthrough starts where a new user does.
    await runCommand('Tensor Scalpel: Remove Model');
    await closeAllEditors();
    await button.waitFor({ timeout: 10_000 });
    return `overview ${params} of ${where}; the folder stays empty; removed again: the welcome view is back`;
  });

  let walkthroughOpen = false;
  await step('first five minutes: the walkthrough lists its steps with their titles from package.json', async () => {
    await openEmptyWindow();
    await runCommand('Welcome: Open Walkthrough...');
    const pick = page.locator('.quick-input-widget .monaco-list-row', { hasText: walkthrough.title }).first();
    await pick.waitFor({ timeout: 15_000 });
    await pick.click();
    const root = page.locator('.gettingStartedContainer');
    await root.locator('.getting-started-category .category-title, h2.category-title', { hasText: walkthrough.title }).first().waitFor({ timeout: 20_000 });
    const steps = root.locator('button.getting-started-step');
    await steps.first().waitFor({ timeout: 10_000 });
    const shown = (await steps.locator('.step-title').allInnerTexts()).map((t) => t.trim());
    const want = walkthrough.steps.map((s) => s.title);
    if (shown.join(' | ') !== want.join(' | ')) throw new Error(`steps shown: ${shown.join(' | ')}; package.json: ${want.join(' | ')}`);
    walkthroughOpen = true;
    return `"${walkthrough.title}": ${shown.join(' → ')}`;
  });

  /** Selects a walkthrough step (click its title to expand it) and clicks the link button in its description. */
  async function runWalkthroughStep(id, label) {
    const tab = page.locator('.tabs-container .tab', { hasText: /Walkthrough|Welcome/ }).first();
    const root = page.locator('.gettingStartedContainer');
    if (!(await root.isVisible())) await tab.click();
    const stepButton = root.locator(`button.getting-started-step[data-step-id$="#${id}"], button.getting-started-step[data-step-id="${id}"]`).first();
    await stepButton.waitFor({ timeout: 10_000 });
    if ((await stepButton.getAttribute('aria-expanded')) !== 'true') await stepButton.click();
    const link = stepButton.locator('.monaco-button, a', { hasText: label }).first();
    await link.waitFor({ timeout: 10_000 });
    // Let the step's media (markdown in a webview) finish loading first, as it has by the time a person
    // has read the step: while it loads it takes focus back to the walkthrough's editor group, and a
    // command that opens its view in the active group would then open it over the walkthrough.
    await root.locator('.getting-started-media iframe.webview.ready, .getting-started-media .webview.ready').first().waitFor({ timeout: 10_000 }).catch(() => undefined);
    await sleep(1500);
    await link.click();
    return stepButton;
  }
  /** The step's view opened beside the walkthrough (its links are command:toSide:), which stays on screen; the step is ticked. */
  const stepDone = async (stepButton) => {
    if (!(await page.locator('.gettingStartedContainer').isVisible())) throw new Error('the view opened over the walkthrough, not beside it');
    for (let i = 0; i < 40 && (await stepButton.getAttribute('aria-checked')) !== 'true'; i++) await sleep(250);
    if ((await stepButton.getAttribute('aria-checked')) !== 'true') throw new Error('the step is not marked done');
  };
  const linkLabel = (s) => /\[([^\]]+)\]\(command:/.exec(s.description)?.[1] ?? '';

  await step('first five minutes: walkthrough step 1 (Open Sample Model) fills the tree and opens the overview', async () => {
    if (!walkthroughOpen) throw new Error('the walkthrough did not open');
    const s = walkthrough.steps[0];
    const b = await runWalkthroughStep(s.id, linkLabel(s));
    await treeRows().filter({ hasText: 'stories260K.gguf' }).first().waitFor({ timeout: 30_000 });
    const params = await sampleOverviewShown();
    await stepDone(b);
    return `tree lists stories260K.gguf; overview ${params}`;
  });

  await step('first five minutes: walkthrough step 2 (Scan Model) fills the model map', async () => {
    if (!walkthroughOpen) throw new Error('the walkthrough did not open');
    const s = walkthrough.steps[1];
    const b = await runWalkthroughStep(s.id, linkLabel(s));
    const ov = await findWebview('#model-map');
    await ov.locator('#scan-progress[data-state="done"]').waitFor({ timeout: 90_000 });
    const filled = await ov.locator('#model-map rect.cell.filled').count();
    if (filled !== storiesRef.tensors.length) throw new Error(`${filled} cells filled, the reference has ${storiesRef.tensors.length} matrices`);
    const rows = await ov.locator('#map-table tr.map-row').count();
    if (rows !== storiesRef.tensors.length) throw new Error(`table has ${rows} rows`);
    await stepDone(b);
    await screenshot('walkthrough', { readme: 'walkthrough' });
    return `${filled} cells filled (reference: ${storiesRef.tensors.length} matrices)`;
  });

  await step('first five minutes: walkthrough step 3 (Analyze Spectrum) asks for a tensor and opens its spectrum', async () => {
    if (!walkthroughOpen) throw new Error('the walkthrough did not open');
    const s = walkthrough.steps[2];
    const b = await runWalkthroughStep(s.id, linkLabel(s));
    const name = 'blk.0.attn_q.weight';
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ timeout: 10_000 });
    await input.fill(name);
    await page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: name }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');
    const sp = await findWebview('#readout-rank');
    await sp.locator('#spectrum-title', { hasText: name }).waitFor({ timeout: 20_000 });
    // The readout at the initial marker agrees with the LAPACK reference (the GGUF names the tensor
    // differently: match by shape and Frobenius norm).
    const k = Number((await sp.locator('#readout-rank').innerText()).split(' ')[0]);
    const shownErr = num(await sp.locator('#readout-error').innerText());
    const ref = storiesRef.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight') ?? storiesRefByName.get(name);
    if (!ref) throw new Error('no reference for the tensor');
    const sv = ref.singularValues, tot = sv.reduce((a, v) => a + v * v, 0);
    let tail = 0;
    for (let i = k; i < sv.length; i++) tail += sv[i] * sv[i];
    const want = Math.sqrt(tail / tot);
    if (!(Math.abs(shownErr - want) <= 1e-3 * Math.max(want, 1e-3))) throw new Error(`rank ${k} error ${shownErr}, reference ${want}`);
    await stepDone(b);
    return `${name}: rank ${k} error ${shownErr} (reference ${want.toPrecision(6)})`;
  });

  await step('first five minutes: walkthrough step 4 (Compress…) opens the bond-dimension editor', async () => {
    if (!walkthroughOpen) throw new Error('the walkthrough did not open');
    const s = walkthrough.steps[3];
    const b = await runWalkthroughStep(s.id, linkLabel(s));
    const ed = await findWebview('#compress-table');
    await ed.locator('#compress-progress').waitFor({ state: 'detached', timeout: 60_000 });
    const count = await ed.locator('#compress-table tr.tensor-row').count();
    if (count !== storiesRef.tensors.length) throw new Error(`${count} rows, expected ${storiesRef.tensors.length}`);
    const before = num(await ed.locator('#total-before').innerText());
    await stepDone(b);
    return `${count} rows; ${before.toLocaleString('en-US')} parameters selected`;
  });

  await step('first five minutes: walkthrough step 5 (Evaluate Model…) opens the Evaluate panel for the sample', async () => {
    if (!walkthroughOpen) throw new Error('the walkthrough did not open');
    const s = walkthrough.steps[4];
    const b = await runWalkthroughStep(s.id, linkLabel(s));
    const ev = await findWebview('#evaluate-title');
    await ev.locator('#evaluate-title', { hasText: 'stories260K.gguf' }).waitFor({ timeout: 20_000 });
    await stepDone(b);
    const done = await page.locator('.gettingStartedContainer button.getting-started-step[aria-checked="true"]').count();
    if (done !== walkthrough.steps.length) throw new Error(`${done} of ${walkthrough.steps.length} steps marked done`);
    await screenshot('walkthrough-done');
    return `all ${done} steps marked done`;
  });

  // 8. The packaged .vsix installs offline into the same VS Code.
  if (!process.env.TS_E2E_NO_PACKAGE) {
    await step('the linux-x64 .vsix packages and installs offline', async () => {
      const pk = spawnSync(process.execPath, ['scripts/package.mjs', 'linux-x64'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
      if (pk.status !== 0) throw new Error(`package failed: ${(pk.stderr || pk.stdout).slice(-800)}`);
      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
      const vsix = path.join(ROOT, 'dist', `${pkg.name}-${pkg.version}-linux-x64.vsix`);
      const ext2 = path.join(tmp, 'ext-vsix');
      const inst = spawnSync(process.execPath, [CODE_SERVER, '--user-data-dir', path.join(tmp, 'user-vsix'), '--extensions-dir', ext2, '--install-extension', vsix],
        { env, encoding: 'utf8', timeout: 120_000 });
      const out = `${inst.stdout}\n${inst.stderr}`;
      if (inst.status !== 0 || !/successfully installed/i.test(out)) throw new Error(`install failed: ${out.slice(-800)}`);
      const dir = readdirSync(ext2).find((d) => d.startsWith(`${pkg.publisher}.${pkg.name}-`));
      if (!dir) throw new Error(`nothing installed in ${ext2}: ${readdirSync(ext2).join(', ')}`);
      for (const f of ['out/extension.js', 'media/sample/stories260K.gguf', 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node']) {
        if (!existsSync(path.join(ext2, dir, f))) throw new Error(`installed extension lacks ${f}`);
      }
      // The README's screenshots ship, so its relative image links resolve in the extension's page.
      const readmeName = readdirSync(path.join(ext2, dir)).find((f) => f.toLowerCase() === 'readme.md'); // vsce stores it as readme.md
      if (!readmeName) throw new Error(`installed extension has no README: ${readdirSync(path.join(ext2, dir)).join(', ')}`);
      const shown = [...readFileSync(path.join(ext2, dir, readmeName), 'utf8').matchAll(/\]\((docs\/screenshots\/[^)\s]+\.png)\)/g)].map((m) => m[1]);
      if (shown.length === 0) throw new Error('the installed README shows no screenshots');
      const missingShots = shown.filter((f) => !existsSync(path.join(ext2, dir, f)));
      if (missingShots.length) throw new Error(`installed extension lacks the README's ${missingShots.join(', ')}`);
      return `${path.basename(vsix)} (${(statSync(vsix).size / 2 ** 20).toFixed(1)} MiB) installed as ${dir}`;
    });
  }

  await step('no unhandled errors from the extension', async () => {
    const exthost = [];
    const walk = (d) => { for (const n of readdirSync(d)) { const p = path.join(d, n); if (statSync(p).isDirectory()) walk(p); else if (/^(exthost|remoteexthost)\.log$/.test(n)) exthost.push(p); } };
    walk(path.join(dirs.user, 'logs'));
    const text = exthost.map((f) => readFileSync(f, 'utf8')).join('\n');
    const bad = text.split('\n').filter((l) => /\[error\]/.test(l) && /tensor-scalpel|tensorScalpel|Tensor Scalpel/i.test(l));
    const ours = pageErrors.filter((e) => /overview|tensorScalpel|tensor-scalpel/i.test(e));
    if (bad.length || ours.length) throw new Error([...bad, ...ours].slice(0, 5).join(' | '));
    return `${exthost.length} extension-host log(s) clean`;
  });
}

/**
 * Every docs/screenshots/*.png that README.md shows must have been rewritten by this run (mtime after
 * the start, and written by screenshot(…, { readme })) and be a PNG of sensible size, so the README
 * never shows a stale or missing picture; a PNG in that folder the README does not show is dead weight.
 */
function checkReadmeScreenshots() {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const refs = [...new Set([...readme.matchAll(/docs\/screenshots\/([^)\s"'<>]+\.png)/g)].map((m) => m[1]))];
  if (refs.length === 0) throw new Error('README.md shows no docs/screenshots/*.png');
  const problems = [];
  const sizes = [];
  for (const name of refs) {
    const file = path.join(README_SHOTS, name);
    if (!existsSync(file)) { problems.push(`${name} is missing`); continue; }
    const st = statSync(file);
    if (st.mtimeMs < started || !readmeShots.has(name)) problems.push(`${name} was not rewritten by this run (mtime ${st.mtime.toISOString()})`);
    const png = readFileSync(file);
    // PNG signature, then the IHDR chunk: width and height as big-endian u32 at bytes 16 and 20.
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    if (png.length < 33 || !png.subarray(0, 8).equals(signature) || png.toString('latin1', 12, 16) !== 'IHDR') { problems.push(`${name} is not a PNG`); continue; }
    const width = png.readUInt32BE(16), height = png.readUInt32BE(20);
    if (width < 600 || height < 400) problems.push(`${name} is ${width}x${height}`);
    if (png.length < 10_000 || png.length > 600_000) problems.push(`${name} is ${png.length} bytes (expected 10 KB - 600 KB)`);
    sizes.push(`${name} ${width}x${height} ${(png.length / 1024).toFixed(0)} KiB`);
  }
  const unshown = readdirSync(README_SHOTS).filter((f) => f.endsWith('.png') && !refs.includes(f));
  if (unshown.length) problems.push(`docs/screenshots holds PNGs the README does not show: ${unshown.join(', ')}`);
  if (problems.length) throw new Error(problems.join('; '));
  return sizes.join(', ');
}

try {
  await main();
} catch (err) {
  record('runner', false, String(err?.stack ?? err).slice(0, 2000));
}
if (ONLY) note(`TS_E2E_ONLY=${ONLY}: the README screenshot check is skipped`);
else if (results.length && !finished) {
  try {
    record('README screenshots were all rewritten by this run', true, checkReadmeScreenshots());
  } catch (err) {
    record('README screenshots were all rewritten by this run', false, String(err?.message ?? err));
  }
}
await finish();
