/**
 * ONNX writer, dense replacements: the real fixtures (pico.onnx, pico_ext.onnx with external data,
 * stories260K.onnx and its _ext variant) rewritten with one weight replaced, read back by our reader,
 * checked by onnx's checker (when python3-onnx is present) and run in onnxruntime-node.
 * Also: external data output, metadata_props, atomicity (cancel mid-write, output = input), errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fsp, readFileSync } from 'node:fs';
import { writeOnnx } from '../../../src/core/checkpoint/onnxWriter';
import { openOnnx } from '../../../src/core/checkpoint/onnx';
import { CancelledError, CheckpointError } from '../../../src/core/checkpoint/errors';
import { decodeModel, encodeModel, OnnxDataType } from '../../../src/core/checkpoint/onnxProto';
import { encodeHalfChunk } from '../../../src/core/checkpoint/safetensorsWriter';
import { PICO, PICO_EXT, STORIES, STORIES_EXT, tempDir, runModel, tokenIds, maxAbsDiff, onnxChecker } from './onnxWriterTestUtil';

const W = 'onnx::MatMul_605'; // h.0.attn.c_proj, stored [in 128, out 128]

async function readTensor(file: string, name: string): Promise<{ values: Float32Array; raw: Uint8Array; dtype: string; shape: number[] }> {
  const c = await openOnnx(file);
  try {
    const t = c.get(name);
    assert.ok(t, `${name} in ${file}`);
    return { values: await t.read(), raw: await t.readRaw(), dtype: t.dtype, shape: t.shape };
  } finally { await c.close(); }
}

/** Every tensor's stored bytes by name, except `skip`. */
async function allRaw(file: string, skip: string[] = []): Promise<Map<string, Uint8Array>> {
  const c = await openOnnx(file);
  try {
    const m = new Map<string, Uint8Array>();
    for (const t of c.tensors) if (!skip.includes(t.name)) m.set(t.name, await t.readRaw());
    return m;
  } finally { await c.close(); }
}

function checkOrSkip(t: { skip: (m: string) => void }, file: string): void {
  const r = onnxChecker(file);
  if (r?.startsWith('skip:')) { t.skip(r); return; }
  assert.equal(r, undefined, `onnx.checker on ${file}: ${r}`);
}

test('pico.onnx dense: the replaced weight reads back, the rest is bit-identical, checker passes, logits change only through it', async (t) => {
  const dir = await tempDir('dense');
  try {
    const orig = await readTensor(PICO, W);
    assert.deepEqual(orig.shape, [128, 128]);
    // A visible edit: remove the first output column (y_0 of c_proj) and scale the rest by 1.5.
    const edited = orig.values.map((v, i) => (i % 128 === 0 ? 0 : v * 1.5));
    const out = path.join(dir, 'edited.onnx');
    const res = await writeOnnx(PICO, out, { replacements: { [W]: { kind: 'dense', data: edited } }, metadata: { 'tensor_scalpel.recipe': '{"op":"test"}', 'tensor_scalpel.source': 'pico.onnx' } });
    assert.deepEqual(res.files, [out]);
    assert.equal(res.nodes.before, res.nodes.after);
    assert.equal(res.parameters.before, res.parameters.after);

    const back = await readTensor(out, W);
    assert.equal(back.dtype, 'F32');
    assert.deepEqual(Array.from(back.values), Array.from(edited));
    const before = await allRaw(PICO, [W]);
    const after = await allRaw(out, [W]);
    assert.equal(after.size, before.size);
    for (const [name, raw] of before) assert.ok(Buffer.from(raw).equals(Buffer.from(after.get(name)!)), `${name} is bit-identical`);
    const c = await openOnnx(out);
    const md = c.metadata as { metadataProps: Record<string, string> };
    assert.equal(md.metadataProps['tensor_scalpel.recipe'], '{"op":"test"}');
    assert.equal(md.metadataProps['tensor_scalpel.source'], 'pico.onnx');
    await c.close();

    // Same values -> the identical file (every other field was copied as stored) and identical logits.
    const same = path.join(dir, 'same.onnx');
    await writeOnnx(PICO, same, { replacements: { [W]: { kind: 'dense', data: orig.values } } });
    assert.ok(readFileSync(same).equals(readFileSync(PICO)), 'same values give a byte-identical model');

    const ids = { input_ids: tokenIds(32, 65) };
    const l0 = await runModel(PICO, ids, 'logits');
    const l1 = await runModel(same, ids, 'logits');
    const l2 = await runModel(out, ids, 'logits');
    assert.deepEqual(l2.dims, [1, 32, 65]);
    assert.equal(maxAbsDiff(l0.data, l1.data), 0);
    assert.ok(maxAbsDiff(l0.data, l2.data) > 1e-2, 'the edit changes the logits');
    checkOrSkip(t, out);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('pico.onnx dense, external data on request: aligned offsets, relative location, same logits', async (t) => {
  const dir = await tempDir('ext');
  try {
    const orig = await readTensor(PICO, W);
    const edited = orig.values.map((v) => -v);
    const out = path.join(dir, 'pico_out.onnx');
    const res = await writeOnnx(PICO, out, { replacements: { [W]: { kind: 'dense', data: edited } }, externalData: true });
    assert.deepEqual(res.files, [out, `${out}.data`]);
    const model = decodeModel(readFileSync(out));
    let externals = 0;
    for (const init of model.graph!.initializer!) {
      if (init.data_location !== 1) continue;
      externals++;
      const kv = Object.fromEntries(init.external_data!.map((e) => [e.key, e.value]));
      assert.equal(kv.location, 'pico_out.onnx.data');
      assert.equal(Number(kv.offset) % 4096, 0, `${init.name} offset ${kv.offset} is page aligned`);
    }
    // Every initializer of >= 1024 bytes (all but none: the smallest are 128 floats = 512 bytes).
    assert.equal(externals, model.graph!.initializer!.filter((i) => (i.dims ?? []).reduce((a, b) => a * Number(b), 1) * 4 >= 1024).length);
    assert.ok(externals > 20);
    assert.deepEqual(Array.from((await readTensor(out, W)).values), Array.from(edited));
    const ref = path.join(dir, 'ref.onnx');
    await writeOnnx(PICO, ref, { replacements: { [W]: { kind: 'dense', data: edited } } });
    const ids = { input_ids: tokenIds(16, 65) };
    assert.equal(maxAbsDiff((await runModel(ref, ids, 'logits')).data, (await runModel(out, ids, 'logits')).data), 0);
    checkOrSkip(t, out);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('pico_ext.onnx (external data input): dense round trip inline and external, logits as pico.onnx', async (t) => {
  const dir = await tempDir('extin');
  try {
    const orig = await readTensor(PICO_EXT, W);
    const inline = path.join(dir, 'inline.onnx');
    await writeOnnx(PICO_EXT, inline, { replacements: { [W]: { kind: 'dense', data: orig.values } } });
    // Inline output of an external-data model: one file, every tensor's bytes as the input's.
    const before = await allRaw(PICO_EXT);
    const after = await allRaw(inline);
    for (const [name, raw] of before) assert.ok(Buffer.from(raw).equals(Buffer.from(after.get(name)!)), name);
    const c = await openOnnx(inline);
    assert.deepEqual(c.files, [inline]);
    await c.close();

    const ext = path.join(dir, 'ext.onnx');
    await writeOnnx(PICO_EXT, ext, { replacements: { [W]: { kind: 'dense', data: orig.values.map((v) => v * 2) } }, externalData: true, externalAlignment: 64 });
    const back = await readTensor(ext, W);
    assert.deepEqual(Array.from(back.values), Array.from(orig.values.map((v) => v * 2)));
    const ids = { input_ids: tokenIds(20, 65) };
    const lp = await runModel(PICO, ids, 'logits');
    assert.equal(maxAbsDiff(lp.data, (await runModel(inline, ids, 'logits')).data), 0);
    assert.ok(maxAbsDiff(lp.data, (await runModel(ext, ids, 'logits')).data) > 1e-2);
    checkOrSkip(t, inline);
    checkOrSkip(t, ext);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('stories260K.onnx and stories260K_ext.onnx: dense replacement round-trips, external output on request', async (t) => {
  const dir = await tempDir('stories');
  try {
    const name = 'model__layers__2__mlp__down_proj__weight';
    for (const input of [STORIES, STORIES_EXT]) {
      const orig = await readTensor(input, name);
      assert.deepEqual(orig.shape, [64, 172]);
      const edited = orig.values.map((v, i) => v + (i % 3 === 0 ? 0.01 : 0));
      const before = await allRaw(input, [name]);
      for (const externalData of [false, true]) {
        const out = path.join(dir, `${path.basename(input, '.onnx')}_${externalData ? 'ext' : 'inline'}.onnx`);
        const res = await writeOnnx(input, out, { replacements: { [name]: { kind: 'dense', data: edited } }, externalData });
        assert.equal(res.files.length, externalData ? 2 : 1);
        assert.deepEqual(Array.from((await readTensor(out, name)).values), Array.from(edited));
        const after = await allRaw(out, [name]);
        assert.equal(after.size, before.size);
        for (const [n, raw] of before) assert.ok(Buffer.from(raw).equals(Buffer.from(after.get(n)!)), `${n} unchanged`);
        if (externalData !== (input === STORIES_EXT)) checkOrSkip(t, out);
      }
    }
    // Same values: identical logits to the original (the Constant mask/RoPE tables came through too).
    const same = path.join(dir, 'same_ext.onnx');
    await writeOnnx(STORIES_EXT, same, { replacements: { [name]: { kind: 'dense', data: (await readTensor(STORIES, name)).values } }, externalData: true });
    const ids = { input_ids: tokenIds(24, 512) };
    assert.equal(maxAbsDiff((await runModel(STORIES, ids, 'logits')).data, (await runModel(same, ids, 'logits')).data), 0);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('atomicity: a cancelled write leaves nothing behind; output = input is refused', async () => {
  const dir = await tempDir('atomic');
  try {
    const orig = await readTensor(PICO, W);
    for (const externalData of [false, true]) {
      const ac = new AbortController();
      let calls = 0;
      const out = path.join(dir, 'cancelled.onnx');
      await assert.rejects(
        writeOnnx(PICO, out, { replacements: { [W]: { kind: 'dense', data: orig.values } }, externalData, signal: ac.signal, onProgress: () => { if (++calls === 5) ac.abort(); } }),
        CancelledError,
      );
      assert.ok(calls >= 5, 'the write was under way');
      assert.deepEqual(await fsp.readdir(dir), [], 'no output and no temporary file');
    }
    await assert.rejects(writeOnnx(PICO, PICO, { replacements: {} }), (e: unknown) => e instanceof CheckpointError && /output path is the input/.test(e.message));
    const link = path.join(dir, 'alias.onnx');
    await fsp.symlink(PICO, link);
    await assert.rejects(writeOnnx(PICO, link, { replacements: {} }), (e: unknown) => e instanceof CheckpointError && /refusing to write the output over an input/.test(e.message));
    await fsp.rm(link);
    // The external data file of the input is an input too.
    const copyDir = await tempDir('atomic2');
    try {
      await fsp.copyFile(PICO_EXT, path.join(copyDir, 'pico_ext.onnx'));
      await fsp.copyFile(`${PICO_EXT}.data`, path.join(copyDir, 'pico_ext.onnx.data'));
      await assert.rejects(
        writeOnnx(path.join(copyDir, 'pico_ext.onnx'), path.join(copyDir, 'pico_ext.onnx.data'), { replacements: {} }),
        (e: unknown) => e instanceof CheckpointError && /over an input/.test(e.message),
      );
    } finally { await fsp.rm(copyDir, { recursive: true, force: true }); }
    assert.deepEqual(await fsp.readdir(dir), []);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('bad replacements are refused before anything is written', async () => {
  const dir = await tempDir('bad');
  try {
    const out = path.join(dir, 'x.onnx');
    await assert.rejects(writeOnnx(PICO, out, { replacements: { 'no.such.weight': { kind: 'dense', data: new Float32Array(4) } } }),
      (e: unknown) => e instanceof CheckpointError && /no initializer named "no.such.weight"/.test(e.message));
    await assert.rejects(writeOnnx(PICO, out, { replacements: { [W]: { kind: 'dense', data: new Float32Array(100) } } }),
      (e: unknown) => e instanceof CheckpointError && /100 values, the initializer \[128, 128\] has 16,384/.test(e.message));
    await assert.rejects(writeOnnx(PICO, out, { replacements: { [W]: { kind: 'lowrank', a: new Float32Array(128 * 4), b: new Float32Array(5 * 128) } } }),
      (e: unknown) => e instanceof CheckpointError && /factor b must hold k x cols = 4 x 128/.test(e.message));
    await assert.rejects(writeOnnx(PICO, out, { replacements: { 'h.0.ln_1.weight': { kind: 'lowrank', a: new Float32Array(128), b: new Float32Array(1) } } }),
      (e: unknown) => e instanceof CheckpointError && /needs a 2-D initializer/.test(e.message));
    await assert.rejects(writeOnnx(PICO, out, { replacements: { [W]: { kind: 'mpo', cores: [new Float32Array(8 * 8 * 2), new Float32Array(3 * 16 * 16)], coreShapes: [[1, 8, 8, 2], [3, 16, 16, 1]], outFactors: [8, 16], inFactors: [8, 16] } } }),
      (e: unknown) => e instanceof CheckpointError && /core 2 has left bond 3, expected 2/.test(e.message));
    await assert.rejects(writeOnnx(PICO, out, { replacements: { [W]: { kind: 'mpo', cores: [new Float32Array(8 * 8 * 2), new Float32Array(2 * 8 * 16)], coreShapes: [[1, 8, 8, 2], [2, 8, 16, 1]], outFactors: [8, 8], inFactors: [8, 16] } } }),
      (e: unknown) => e instanceof CheckpointError && /factors give \[64, 128\], smaller than the stored matrix \[128, 128\]/.test(e.message));
    assert.deepEqual(await fsp.readdir(dir), []);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('externalData auto: inline below the limit, external data above it; false above it is refused', async () => {
  const dir = await tempDir('auto');
  try {
    const small = path.join(dir, 'small.onnx');
    const r1 = await writeOnnx(PICO, small, { replacements: {} });
    assert.deepEqual(r1.files, [small]);
    // With the limit lowered below the model's 3.4 MB, 'auto' must switch to external data.
    const big = path.join(dir, 'big.onnx');
    const r2 = await writeOnnx(PICO, big, { replacements: {}, inlineLimitBytes: 1_000_000 });
    assert.deepEqual(r2.files, [big, `${big}.data`]);
    assert.ok((await fsp.stat(big)).size < 1_000_000);
    const ids = { input_ids: tokenIds(8, 65) };
    assert.equal(maxAbsDiff((await runModel(PICO, ids, 'logits')).data, (await runModel(big, ids, 'logits')).data), 0);
    await assert.rejects(writeOnnx(PICO, path.join(dir, 'refused.onnx'), { replacements: {}, externalData: false, inlineLimitBytes: 1_000_000 }),
      (e: unknown) => e instanceof CheckpointError && /beyond the 1,000,000-byte limit/.test(e.message));
    assert.deepEqual((await fsp.readdir(dir)).sort(), ['big.onnx', 'big.onnx.data', 'small.onnx']);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('F16 initializers: a dense replacement is stored as F16, low-rank factors too', async (t) => {
  const dir = await tempDir('f16');
  try {
    const vi = (name: string, dims: number[]) => ({ name, type: { tensor_type: { elem_type: OnnxDataType.FLOAT16, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } });
    const w = Float32Array.from({ length: 6 * 4 }, (_, i) => (i - 12) / 8);
    const src = path.join(dir, 'f16.onnx');
    await fsp.writeFile(src, encodeModel({
      ir_version: 8, opset_import: [{ domain: '', version: 14 }],
      graph: {
        name: 'f16', node: [{ name: 'mm', op_type: 'MatMul', input: ['x', 'W'], output: ['y'] }],
        initializer: [{ name: 'W', dims: [6, 4], data_type: OnnxDataType.FLOAT16, raw_data: encodeHalfChunk(w, 0, w.length, 'F16') }],
        input: [vi('x', [2, 6])], output: [vi('y', [2, 4])],
      },
    }));
    // Values exactly representable in F16 come back exactly.
    const edited = w.map((v) => v * 0.5);
    const out = path.join(dir, 'dense.onnx');
    await writeOnnx(src, out, { replacements: { W: { kind: 'dense', data: edited } } });
    const back = await readTensor(out, 'W');
    assert.equal(back.dtype, 'F16');
    assert.equal(back.raw.byteLength, 6 * 4 * 2);
    assert.deepEqual(Array.from(back.values), Array.from(edited));
    checkOrSkip(t, out);
    const a = Float32Array.from({ length: 6 * 2 }, (_, i) => i / 4), b = Float32Array.from({ length: 2 * 4 }, (_, i) => 1 - i / 8);
    const outL = path.join(dir, 'lowrank.onnx');
    await writeOnnx(src, outL, { replacements: { W: { kind: 'lowrank', a, b } } });
    const fa = await readTensor(outL, 'W.lowrank.a');
    assert.equal(fa.dtype, 'F16');
    assert.deepEqual(fa.shape, [6, 2]);
    assert.deepEqual(Array.from(fa.values), Array.from(a));
    checkOrSkip(t, outL);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});
