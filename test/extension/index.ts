/**
 * Tests that run inside the VS Code extension host (bundled by scripts/build.mjs to out/test/index.js;
 * test/e2e/run.mjs loads it through code-server's extensionTestsPath payload). The host's exit code is
 * not reported back, so the results go to the JSON file named by TS_E2E_INHOST_RESULTS.
 *
 * They cover what the browser cannot see: the exported API, every contributed command being
 * registered, and the cancellable progress helper.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { open } from '../../src/core/checkpoint';
import { CancelledError } from '../../src/core/checkpoint/errors';
import type { TensorScalpelApi } from '../../src/extension/extension';
import { PROGRESS_DELAY_MS, withDelayedProgress } from '../../src/extension/progress';

interface Result { name: string; ok: boolean; detail: string }

function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(): Promise<void> {
  const results: Result[] = [];
  const test = async (name: string, fn: () => Promise<string | void>) => {
    try {
      results.push({ name, ok: true, detail: (await fn()) ?? '' });
    } catch (err) {
      results.push({ name, ok: false, detail: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) });
    }
  };

  const ext = vscode.extensions.all.find((e) => e.packageJSON?.name === 'tensor-scalpel');
  let api: TensorScalpelApi | undefined;

  await test('the extension activates and returns its API', async () => {
    check(ext, 'extension not found');
    api = (await ext.activate()) as TensorScalpelApi;
    check(api?.store && api.tree && api.editors && api.treeView, 'API incomplete');
    return ext.id;
  });

  await test('every contributed command is registered', async () => {
    const contributed = (ext!.packageJSON.contributes.commands as Array<{ command: string }>).map((c) => c.command);
    const all = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !all.has(c));
    check(missing.length === 0, `missing: ${missing.join(', ')}`);
    return `${contributed.length} commands`;
  });

  await test('withDelayedProgress returns quick work without waiting for the delay', async () => {
    const t0 = Date.now();
    const v = await withDelayedProgress('quick', async () => 42);
    check(v === 42, `got ${v}`);
    check(Date.now() - t0 < PROGRESS_DELAY_MS, `took ${Date.now() - t0} ms`);
  });

  await test('withDelayedProgress: cancelling rejects with CancelledError and aborts the work', async () => {
    const cts = new vscode.CancellationTokenSource();
    let seen: AbortSignal | undefined;
    const p = withDelayedProgress('slow', (signal) => {
      seen = signal;
      return new Promise<number>((resolve) => setTimeout(() => resolve(1), 30_000));
    }, cts.token);
    await sleep(PROGRESS_DELAY_MS + 300); // the notification is up by now
    const t0 = Date.now();
    cts.cancel();
    let err: unknown;
    try { await p; } catch (e) { err = e; }
    check(err instanceof CancelledError, `rejected with ${String(err)}`);
    check(seen?.aborted === true, 'work signal not aborted');
    check(Date.now() - t0 < 1000, `cancel took ${Date.now() - t0} ms`);
  });

  await test('Open Sample Model lists the bundled sample with the core\'s totals', async () => {
    check(api, 'no API');
    await vscode.commands.executeCommand('tensorScalpel.openSample');
    const sample = vscode.Uri.joinPath(ext!.extensionUri, 'media', 'sample', 'stories260K.gguf');
    for (let i = 0; i < 100 && !api.store.has(sample); i++) await sleep(100);
    const model = api.store.get(sample);
    check(model, 'sample not in the store');
    const ckpt = await open(sample.fsPath);
    try {
      const total = ckpt.tensors.reduce((a, t) => a + t.params, 0);
      check(model.summary.totalParams === total, `${model.summary.totalParams} != ${total}`);
    } finally {
      await ckpt.close();
    }
    return `${model.summary.totalParams} parameters`;
  });

  await test('filter sets the view message and context; clear resets it', async () => {
    check(api, 'no API');
    api.tree.setFilter('ffn_down');
    // Models remembered from earlier in the workspace may be listed too: count over all of them.
    const names = api.store.all().flatMap((m) => m.summary.tensors.map((t) => t.name));
    const want = `Filter "ffn_down": ${names.filter((n) => n.includes('ffn_down')).length.toLocaleString('en-US')} of ${names.length.toLocaleString('en-US')} tensors match.`;
    check(api.treeView.message === want, `message "${api.treeView.message}", expected "${want}"`);
    check(api.treeView.description === 'filter: ffn_down', `description "${api.treeView.description}"`);
    await vscode.commands.executeCommand('tensorScalpel.clearFilter');
    check(api.treeView.message === undefined, `message after clear "${api.treeView.message}"`);
  });

  await test('Remove Model on a tree node drops exactly that model', async () => {
    check(api, 'no API');
    const sample = vscode.Uri.joinPath(ext!.extensionUri, 'media', 'sample', 'stories260K.gguf');
    const node = api.tree.modelNode(sample);
    check(node, 'no node for the sample');
    const before = api.store.all().length;
    await vscode.commands.executeCommand('tensorScalpel.removeModel', node);
    check(!api.store.has(sample), 'still listed');
    check(api.store.all().length === before - 1, 'other models changed');
  });

  await test('analysis service: a spectrum from the worker pool agrees with ||W||_F of the decoded tensor', async () => {
    check(api, 'no API');
    const sample = vscode.Uri.joinPath(ext!.extensionUri, 'media', 'sample', 'stories260K.gguf').fsPath;
    const name = 'blk.0.attn_q.weight';
    const t = await api.analysis.spectrum(sample, name);
    const s = t.singularValues ?? [];
    check(s.length === 64, `${s.length} singular values`);
    const ckpt = await open(sample);
    let fro = 0;
    try {
      const w = await ckpt.get(name)!.read();
      for (let i = 0; i < w.length; i++) fro += w[i] * w[i];
      fro = Math.sqrt(fro);
    } finally {
      await ckpt.close();
    }
    const fromS = Math.sqrt(s.reduce((a, v) => a + v * v, 0));
    check(Math.abs(fromS - fro) < 1e-4 * fro, `sqrt(sum s^2) = ${fromS}, ||W||_F = ${fro}`);
    return `${t.backend}: ||W||_F ${fro.toFixed(5)}, from the spectrum ${fromS.toFixed(5)}`;
  });

  await test('computed directions: the extension point lists and removes a direction', async () => {
    check(api, 'no API');
    const before = api.analysis.computedDirections().length;
    const id = await vscode.commands.executeCommand('tensorScalpel.addComputedDirection', { id: 'inhost-test', label: 'test direction', file: '/nonexistent/refusal.npy', detail: 'from an in-host test' });
    check(id === 'inhost-test', `returned ${String(id)}`);
    check(api.analysis.computedDirections().some((d) => d.id === 'inhost-test'), 'not listed');
    await vscode.commands.executeCommand('tensorScalpel.removeComputedDirection', 'inhost-test');
    check(api.analysis.computedDirections().length === before, 'not removed');
  });

  const out = process.env.TS_E2E_INHOST_RESULTS;
  if (out) writeFileSync(out, JSON.stringify(results, null, 2));
  else console.log(JSON.stringify(results, null, 2));
  const failed = results.filter((r) => !r.ok);
  if (failed.length) throw new Error(`${failed.length} in-host test(s) failed: ${failed.map((f) => f.name).join('; ')} (${path.basename(out ?? 'stdout')})`);
}
