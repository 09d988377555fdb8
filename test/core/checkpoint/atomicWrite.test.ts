/**
 * Atomic output: the buffered positional writer, temp-file + rename, cleanup on failure and
 * cancellation, and the refusal to write over an input — with the real writers on the real pico
 * and stories260K fixtures where a writer is involved.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { BufferedFileWriter, withAtomicOutput, withAtomicOutputs, tempPathFor } from '../../../src/core/checkpoint/atomicWrite';
import { writeSafetensors, sourcesFromCheckpoint, type TensorSource } from '../../../src/core/checkpoint/safetensorsWriter';
import { writeGguf, ggufSourcesFrom } from '../../../src/core/checkpoint/ggufWriter';
import { openGguf } from '../../../src/core/checkpoint/gguf';
import { open } from '../../../src/core/checkpoint/open';
import { CancelledError, CheckpointError } from '../../../src/core/checkpoint/errors';

const FIX = path.resolve(__dirname, '../../../../shared/fixtures');
const PICO = path.join(FIX, 'pico/pico.safetensors');
const STORIES = path.join(FIX, 'real/stories260K.gguf');

let dir: string;
before(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-atomic-')); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await fsp.readFile(file)).digest('hex');
}
/** A fresh empty folder per test, so "nothing left behind" can be checked by listing it. */
async function freshDir(name: string): Promise<string> {
  const d = path.join(dir, name);
  await fsp.mkdir(d);
  return d;
}

test('BufferedFileWriter: appends of every size, padTo and writeAt give exactly the bytes an in-memory model predicts', async () => {
  const d = await freshDir('buffered');
  const file = path.join(d, 'x.bin');
  const handle = await fsp.open(file, 'w');
  const model: number[] = [];
  // A 1 KiB buffer, so small appends cross buffer boundaries and 1 MiB+ appends take the direct path.
  const w = new BufferedFileWriter(handle, file, { bufferBytes: 1024 });
  const sizes = [0, 1, 7, 1023, 1024, 1025, 3000, 1 << 20, 5, (1 << 20) + 3, 17];
  for (const n of sizes) {
    const b = randomBytes(n);
    await w.write(b);
    for (const x of b) model.push(x);
    assert.equal(w.position, model.length);
    const pad = await w.padTo(64, 0xab);
    for (let i = 0; i < pad; i++) model.push(0xab);
    assert.equal(w.position % 64, 0);
  }
  // Patch bytes both in the flushed part and in the part still buffered.
  for (const at of [0, 1500, model.length - 10]) {
    const patch = randomBytes(10);
    await w.writeAt(at, patch);
    for (let i = 0; i < 10; i++) model[at + i] = patch[i];
  }
  await assert.rejects(w.writeAt(model.length - 5, new Uint8Array(10)), RangeError);
  await w.sync();
  await handle.close();
  const got = await fsp.readFile(file);
  assert.equal(got.length, model.length);
  assert.ok(Buffer.from(model).equals(got), 'file bytes equal the model');
});

test('withAtomicOutput: the result appears under the target name only, written through a temp file beside it', async () => {
  const d = await freshDir('basic');
  const target = path.join(d, 'out.bin');
  let seenTmp = '';
  await withAtomicOutput(target, [PICO], async (out, tmp) => {
    seenTmp = tmp;
    assert.equal(path.dirname(tmp), d, 'temp file is in the target folder');
    assert.match(path.basename(tmp), /^\.out\.bin\.tmp-[0-9a-f]{16}$/);
    await out.write(new TextEncoder().encode('hello'));
    // While writing, the target does not exist yet.
    await assert.rejects(fsp.stat(target));
  });
  assert.equal(await fsp.readFile(target, 'utf8'), 'hello');
  assert.deepEqual(await fsp.readdir(d), ['out.bin']);
  await assert.rejects(fsp.stat(seenTmp), 'temp file is gone');
  assert.notEqual(tempPathFor(target), tempPathFor(target), 'temp names are random');
});

test('an existing target is replaced only on success', async () => {
  const d = await freshDir('replace');
  const target = path.join(d, 'model.safetensors');
  await fsp.writeFile(target, 'old content');
  const failing = writeSafetensors(target, [
    { name: 'a', shape: [2], dtype: 'F32', data: async () => new Float32Array([1, 2]) },
    { name: 'b', shape: [2], dtype: 'F32', data: async () => { throw new Error('boom'); } },
  ], { inputs: [] });
  await assert.rejects(failing, (e: Error) => e instanceof CheckpointError && /tensor b/.test(e.message) && /boom/.test(e.message));
  assert.equal(await fsp.readFile(target, 'utf8'), 'old content', 'failed write leaves the old file');
  assert.deepEqual(await fsp.readdir(d), ['model.safetensors'], 'no temp file left');

  await writeSafetensors(target, [{ name: 'a', shape: [2], dtype: 'F32', data: async () => new Float32Array([1, 2]) }], { inputs: [] });
  const ck = await open(target);
  try {
    assert.deepEqual(Array.from(await ck.get('a')!.read()), [1, 2]);
  } finally {
    await ck.close();
  }
  assert.deepEqual(await fsp.readdir(d), ['model.safetensors']);
});

test('cancelling after the 3rd tensor (pico -> safetensors) leaves neither target nor temp file, and produces no 4th tensor', async () => {
  const d = await freshDir('cancel-st');
  const target = path.join(d, 'pico_copy.safetensors');
  const ck = await open(PICO);
  try {
    const ac = new AbortController();
    const produced: string[] = [];
    const sources: TensorSource[] = sourcesFromCheckpoint(ck, { dtype: 'F16' }).map((s) => ({ ...s, data: () => { produced.push(s.name); return s.data(); } }));
    const progress: number[] = [];
    await assert.rejects(
      writeSafetensors(target, sources, { inputs: ck.files, signal: ac.signal, onProgress: (p) => { progress.push(p.index); if (p.index === 2) ac.abort(); } }),
      CancelledError,
    );
    assert.deepEqual(progress, [0, 1, 2]);
    assert.equal(produced.length, 3, 'no tensor is produced after the cancel');
    assert.deepEqual(await fsp.readdir(d), []);
  } finally {
    await ck.close();
  }
});

test('cancelling a sharded write removes every shard and the index', async () => {
  const d = await freshDir('cancel-shards');
  const ck = await open(PICO);
  try {
    const ac = new AbortController();
    const total = ck.tensors.reduce((a, t) => a + t.byteLength, 0);
    await assert.rejects(
      writeSafetensors(path.join(d, 'model.safetensors'), sourcesFromCheckpoint(ck), {
        inputs: ck.files, maxShardBytes: Math.ceil(total / 3), signal: ac.signal,
        // Cancel in the last shard, when the first shards are complete (finished but not renamed).
        onProgress: (p) => { if (p.index === ck.tensors.length - 2) ac.abort(); },
      }),
      CancelledError,
    );
    assert.deepEqual(await fsp.readdir(d), []);
  } finally {
    await ck.close();
  }
});

test('cancelling a GGUF write after the 3rd tensor leaves nothing; a failing producer neither', async () => {
  const d = await freshDir('cancel-gguf');
  const ck = await openGguf(STORIES);
  try {
    const target = path.join(d, 'out.gguf');
    const ac = new AbortController();
    await assert.rejects(
      writeGguf(target, ggufSourcesFrom(ck, { type: 'Q8_0' }), { inputs: ck.files, kv: ck.gguf.kv, signal: ac.signal, onProgress: (p) => { if (p.index === 2) ac.abort(); } }),
      CancelledError,
    );
    assert.deepEqual(await fsp.readdir(d), []);
    const sources = ggufSourcesFrom(ck);
    sources[5] = { ...sources[5], data: async () => new Float32Array(3) }; // wrong length
    await assert.rejects(writeGguf(target, sources, { inputs: ck.files, kv: ck.gguf.kv }), (e: Error) => e instanceof CheckpointError && e.message.includes(sources[5].name));
    assert.deepEqual(await fsp.readdir(d), []);
  } finally {
    await ck.close();
  }
});

test('target == input is refused with a clear error and the input is untouched (same path, relative path, symlink, hard link)', async () => {
  const d = await freshDir('same');
  const input = path.join(d, 'pico.safetensors');
  await fsp.copyFile(PICO, input);
  const before = await sha256(input);
  await fsp.symlink(input, path.join(d, 'link.safetensors'));
  await fsp.link(input, path.join(d, 'hard.safetensors'));
  const ck = await open(input);
  try {
    const targets = [
      input,
      path.relative(process.cwd(), input),
      path.join(d, 'sub', '..', 'pico.safetensors'),
      path.join(d, 'link.safetensors'),
      path.join(d, 'hard.safetensors'),
    ];
    await fsp.mkdir(path.join(d, 'sub'));
    for (const target of targets) {
      await assert.rejects(
        writeSafetensors(target, sourcesFromCheckpoint(ck, { dtype: 'F16' }), { inputs: ck.files }),
        (e: Error) => e instanceof CheckpointError && /refusing to write the output over an input/.test(e.message) && e.message.includes(input),
        `target ${target}`,
      );
    }
    // The GGUF writer and a shard set refuse the same way.
    await assert.rejects(writeGguf(input, [], { inputs: [input] }), /refusing to write the output over an input/);
    await assert.rejects(
      withAtomicOutputs([path.join(d, 'fine.bin'), path.join(d, 'link.safetensors')], [input], async () => undefined),
      /refusing to write the output over an input/,
    );
  } finally {
    await ck.close();
  }
  assert.equal(await sha256(input), before, 'input bytes unchanged');
  assert.deepEqual((await fsp.readdir(d)).sort(), ['hard.safetensors', 'link.safetensors', 'pico.safetensors', 'sub']);
});

test('bad targets: a missing folder, a folder, the same target twice', async () => {
  const d = await freshDir('bad-targets');
  await assert.rejects(withAtomicOutput(path.join(d, 'nope', 'x.bin'), [], async () => undefined), (e: Error) => e instanceof CheckpointError && /does not exist/.test(e.message));
  await assert.rejects(withAtomicOutput(d, [], async () => undefined), (e: Error) => e instanceof CheckpointError && /is a folder/.test(e.message));
  await assert.rejects(withAtomicOutputs([path.join(d, 'a'), path.join(d, 'a')], [], async () => undefined), /named twice/);
  assert.deepEqual(await fsp.readdir(d), []);
});

test('withAtomicOutputs commits a set in order and removes all temp files when the callback fails midway', async () => {
  const d = await freshDir('set');
  const targets = ['a.bin', 'b.bin', 'c.bin'].map((n) => path.join(d, n));
  await assert.rejects(withAtomicOutputs(targets, [], async (set) => {
    for (let i = 0; i < 2; i++) {
      const w = await set.open(i);
      await w.write(new Uint8Array([i]));
      await set.finish(i);
    }
    assert.equal((await fsp.readdir(d)).length, 2, 'two temp files exist while writing');
    throw new Error('third fails');
  }), /third fails/);
  assert.deepEqual(await fsp.readdir(d), []);

  await withAtomicOutputs(targets, [], async (set) => {
    for (let i = 0; i < 3; i++) await (await set.open(i)).write(new Uint8Array([i, i]));
  });
  assert.deepEqual((await fsp.readdir(d)).sort(), ['a.bin', 'b.bin', 'c.bin']);
  assert.deepEqual([...(await fsp.readFile(targets[2]))], [2, 2]);
});
