// The pool's 'compress-table' and 'apply-recipe' tasks: results identical to the in-process
// computation, the caller's event loop stays free while they run, progress streams in order, and a
// cancelled write leaves neither output nor temp file — whether the worker stops by itself or is killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { WorkerPool, listTempOutputs, removeTempOutputs, type TaskProgress } from '../../../src/core/jobs';
import { open, CancelledError } from '../../../src/core/checkpoint';
import { tempPathFor } from '../../../src/core/checkpoint/atomicWrite';
import { getLinalgBackend } from '../../../src/core/linalg';
import { compressTensorTable } from '../../../src/core/analysis/chiTable';
import { applyRecipe, type Recipe } from '../../../src/core/surgery';

const SHARED = join(__dirname, '..', '..', '..', '..', 'shared');
const PICO = join(SHARED, 'fixtures/pico/pico.safetensors');
/** Backend settings both sides use, so "identical" means bit-identical (same library, one thread). */
const SETTINGS = { backend: 'auto', threads: 1 } as const;
/** MPO chi 8 over the default selection (the 2-D matrices of the transformer blocks). */
const MPO_RECIPE: Recipe = { version: 1, compress: [{ method: 'mpo', chi: 8 }] };

async function picoMatrices(): Promise<string[]> {
  const ckpt = await open(PICO);
  try {
    return ckpt.tensors.filter((t) => t.shape.length === 2).map((t) => t.name);
  } finally {
    await ckpt.close();
  }
}

/**
 * The same monitor over an idle second first, so that a loaded machine (other processes on the cores)
 * is not mistaken for a blocked event loop; work on this thread would add delays of its own length.
 */
async function idleBaseline(): Promise<{ p99: number; max: number }> {
  const idle = monitorEventLoopDelay({ resolution: 5 });
  idle.enable();
  await new Promise((r) => setTimeout(r, 1000));
  idle.disable();
  return { p99: idle.percentile(99) / 1e6, max: idle.max / 1e6 };
}

function assertResponsive(t: { diagnostic(s: string): void }, what: string, h: IntervalHistogram, base: { p99: number; max: number }) {
  const p99 = h.percentile(99) / 1e6, max = h.max / 1e6;
  t.diagnostic(`event-loop delay during ${what}: p50 ${(h.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms (idle baseline: p99 ${base.p99.toFixed(1)} ms, max ${base.max.toFixed(1)} ms)`);
  assert.ok(p99 < Math.max(100, 3 * base.p99), `${what}: event-loop delay p99 ${p99.toFixed(1)} ms (idle baseline ${base.p99.toFixed(1)} ms)`);
  assert.ok(max < Math.max(250, 3 * base.max), `${what}: event-loop delay max ${max.toFixed(1)} ms (idle baseline ${base.max.toFixed(1)} ms)`);
}

test('compress-table through the pool equals the in-process table for every pico matrix, with the caller free', async (t) => {
  const names = await picoMatrices();
  const pool = new WorkerPool({ size: 2 });
  const backend = await getLinalgBackend(SETTINGS.backend, { threads: SETTINGS.threads });
  const ckpt = await open(PICO);
  try {
    const base = await idleBaseline();
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const pooled = await Promise.all(names.map((name) => pool.run({ type: 'compress-table', path: PICO, tensor: name, settings: SETTINGS })));
    h.disable();
    assert.equal(pool.stats.computed, names.length);
    for (let i = 0; i < names.length; i++) {
      const direct = await compressTensorTable(ckpt.get(names[i])!, backend);
      assert.deepEqual(pooled[i], direct, `${names[i]}: pooled table equals the direct one`);
      assert.equal(pooled[i].errors.at(-1), 0, `${names[i]}: the full bond dimension is exact`);
    }
    assert.equal(pooled.find((r) => r.name === 'wte.weight')!.defaultOn, false, 'embeddings are off by default');
    // Explicit factors reach the worker.
    const three = await pool.run({ type: 'compress-table', path: PICO, tensor: 'h.0.mlp.c_fc.weight', factors: { outFactors: [8, 8, 8], inFactors: [8, 4, 4] }, settings: SETTINGS });
    assert.deepEqual(three, await compressTensorTable(ckpt.get('h.0.mlp.c_fc.weight')!, backend, { outFactors: [8, 8, 8], inFactors: [8, 4, 4] }));
    assert.equal(three.bondEntropies.length, 2);
    // A bad tensor name fails its task with the checkpoint's message; the pool goes on.
    await assert.rejects(pool.run({ type: 'compress-table', path: PICO, tensor: 'no.such', settings: SETTINGS }), /no such tensor/);
    assertResponsive(t, `compress-table over ${names.length} matrices`, h, base);
  } finally {
    await ckpt.close();
    await backend.dispose();
    await pool.dispose();
  }
});

test('apply-recipe through the pool writes the same model as applyRecipe in-process, progress in order, caller free', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-apply-pool-'));
  const pool = new WorkerPool({ size: 1 });
  try {
    const viaPool = join(dir, 'pool.safetensors'), direct = join(dir, 'direct.safetensors');
    const events: TaskProgress[] = [];
    const base = await idleBaseline();
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const r = await pool.run({ type: 'apply-recipe', recipe: MPO_RECIPE, options: { input: PICO, output: viaPool }, settings: SETTINGS }, { onProgress: (p) => events.push(p) });
    h.disable();
    const backend = await getLinalgBackend(SETTINGS.backend, { threads: SETTINGS.threads });
    let d;
    // For contrast (reported, not asserted): the same write on this thread, as the extension did before.
    const hDirect = monitorEventLoopDelay({ resolution: 5 });
    try {
      hDirect.enable();
      d = await applyRecipe(MPO_RECIPE, { input: PICO, output: direct, backend });
      hDirect.disable();
    } finally {
      await backend.dispose();
    }
    t.diagnostic(`event-loop delay with applyRecipe on the calling thread: p99 ${(hDirect.percentile(99) / 1e6).toFixed(1)} ms, max ${(hDirect.max / 1e6).toFixed(1)} ms`);
    assert.deepEqual(r.tensors, d.tensors, 'the same per-tensor reports');
    assert.deepEqual(r.totals.totalParams, d.totals.totalParams);
    assert.equal(r.tensors.length, 16, 'the 16 block matrices were compressed');
    assert.ok(r.tensors.every((x) => x.bondDimensions!.every((b) => b <= 8)));
    const a = await open(viaPool), b = await open(direct);
    try {
      assert.deepEqual(a.tensors.map((x) => x.name), b.tensors.map((x) => x.name));
      for (const x of a.tensors) assert.deepEqual(await x.read(), await b.get(x.name)!.read(), `${x.name}: same values`);
    } finally {
      await a.close();
      await b.close();
    }
    // Progress: phases in the order applyRecipe runs them; within a phase done = 0, 1, ..., total - 1.
    assert.ok(events.length > 0);
    const runs = events.map((e) => e.phase).filter((ph, i, all) => i === 0 || all[i - 1] !== ph);
    assert.deepEqual(runs, (['hash', 'plan', 'write'] as const).filter((ph) => runs.includes(ph)), 'phases arrive grouped, in apply order');
    assert.equal(runs[0], 'hash');
    assert.equal(runs.at(-1), 'write');
    const phases = runs;
    for (const ph of phases) {
      const ev = events.filter((e) => e.phase === ph);
      assert.deepEqual(ev.map((e) => e.done), ev.map((_, i) => i), `${ph}: done counts 0..n-1 in order`);
      assert.ok(ev.every((e) => e.total === ev.length), `${ph}: total is the phase's count`);
    }
    const written = events.filter((e) => e.phase === 'write').map((e) => e.name);
    assert.deepEqual(written, b.tensors.map((x) => x.name), 'one write event per output tensor, in file order');
    assertResponsive(t, 'apply-recipe (MPO chi 8)', h, base);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no temp file is left');
  } finally {
    await pool.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function cancelMidWrite(pool: WorkerPool, dir: string) {
  const out = join(dir, 'cancelled.safetensors');
  const ac = new AbortController();
  let tempSeen = false, afterAbort = 0;
  const run = pool.run({ type: 'apply-recipe', recipe: MPO_RECIPE, options: { input: PICO, output: out }, settings: SETTINGS }, {
    signal: ac.signal,
    onProgress: (p) => {
      if (ac.signal.aborted) { afterAbort++; return; }
      // The third tensor is being written: the atomic writer's temp file exists now.
      if (p.phase === 'write' && p.done === 2) {
        tempSeen = readdirSync(dir).some((f) => /^\.cancelled\.safetensors\.tmp-[0-9a-f]{16}$/.test(f));
        ac.abort();
      }
    },
  });
  await assert.rejects(run, (e) => e instanceof CancelledError);
  assert.ok(tempSeen, 'the write was under way (its temp file existed) when cancelled');
  assert.equal(afterAbort, 0, 'no progress after the abort');
  assert.deepEqual(readdirSync(dir), [], 'no output, no sidecar and no temp file');
  assert.equal(existsSync(out), false);
  return out;
}

test('cancelling apply-recipe mid-write: the worker stops by itself and leaves no file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-apply-cancel-'));
  const pool = new WorkerPool({ size: 1, cancelGraceMs: 10_000 });
  try {
    await cancelMidWrite(pool, dir);
    assert.equal(pool.stats.forcedStops, 0, 'stopped cooperatively within the grace period');
    assert.equal(pool.stats.workersRecycled, 0, 'the same worker stays in service');
    // ... and writes the next model.
    const r = await pool.run({ type: 'apply-recipe', recipe: MPO_RECIPE, options: { input: PICO, output: join(dir, 'after.safetensors') }, settings: SETTINGS });
    assert.equal(r.tensors.length, 16);
    assert.equal(pool.stats.workersStarted, 1);
  } finally {
    await pool.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cancelling apply-recipe with no grace period terminates the worker and the pool removes the temp file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-apply-kill-'));
  const pool = new WorkerPool({ size: 1, cancelGraceMs: 0 });
  try {
    await cancelMidWrite(pool, dir);
    assert.equal(pool.stats.forcedStops, 1, 'the worker was terminated');
    t.diagnostic(`temp files the pool removed after terminating the worker: ${pool.stats.tempFilesRemoved}`);
    assert.equal(pool.stats.workersRecycled, 1);
    // A fresh worker takes the next task.
    const r = await pool.run({ type: 'compress-table', path: PICO, tensor: 'wpe.weight', settings: SETTINGS });
    assert.equal(r.name, 'wpe.weight');
    assert.equal(pool.stats.workersStarted, 2);
  } finally {
    await pool.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('forced-stop cleanup removes only the temp files of that write that appeared after it began', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-cleanup-'));
  try {
    const target = join(dir, 'model.compressed.safetensors');
    const older = tempPathFor(target); // another write's, present before ours
    writeFileSync(older, 'x');
    const before = new Set(await listTempOutputs(target));
    const ours = [tempPathFor(target), tempPathFor(join(dir, 'model.compressed-00001-of-00002.safetensors')), tempPathFor(`${target}.recipe.json`)];
    for (const f of ours) writeFileSync(f, 'x');
    const unrelated = [tempPathFor(join(dir, 'other.safetensors')), join(dir, 'model.compressed.safetensors'), join(dir, '.model.compressed.safetensors.tmp-notahexname')];
    for (const f of unrelated) writeFileSync(f, 'x');
    const removed = await removeTempOutputs(target, before);
    assert.deepEqual(removed.sort(), [...ours].sort());
    assert.deepEqual(readdirSync(dir).sort(), [older, ...unrelated].map((f) => f.slice(dir.length + 1)).sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
