/**
 * The ONNX reader against the real fixtures: PicoGPT (GPT-2 layout, MatMul weights stored transposed
 * under onnx::MatMul_NNN names) and stories260K (Llama, named initializers, Constant mask/RoPE
 * tables), each embedded and with external data. Norms are checked against the LAPACK spectra in
 * ../shared/reference; the index is cross-checked against Debian's python3-onnx when it is present.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { openOnnx } from '../../../src/core/checkpoint/onnx';
import { open } from '../../../src/core/checkpoint/open';
import type { Checkpoint, TensorEntry } from '../../../src/core/checkpoint/types';

const ROOT = path.resolve(__dirname, '../../..');
const SHARED = path.resolve(ROOT, '../shared');
const PICO = path.join(SHARED, 'fixtures/pico/pico.onnx');
const PICO_EXT = path.join(SHARED, 'fixtures/pico/pico_ext.onnx');
const STORIES = path.join(SHARED, 'fixtures/stories260k/stories260K.onnx');
const STORIES_EXT = path.join(SHARED, 'fixtures/stories260k/stories260K_ext.onnx');

interface RefTensor { name: string; shape: number[]; singularValues: number[] }
function reference(which: 'pico' | 'stories260k'): Array<RefTensor & { norm: number }> {
  const j = JSON.parse(readFileSync(path.join(SHARED, `reference/${which}.spectra.json`), 'utf8')) as { tensors: RefTensor[] };
  // ||W||_F^2 = trace(W^T W) = sum_i s_i^2.
  return j.tensors.map((t) => ({ ...t, norm: Math.sqrt(t.singularValues.reduce((s, x) => s + x * x, 0)) }));
}

/** ||W||_F accumulated in float64. */
function frobenius(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

async function withCheckpoint<T>(p: string, fn: (c: Checkpoint) => Promise<T>, opts?: Parameters<typeof openOnnx>[1]): Promise<T> {
  const c = await openOnnx(p, opts);
  try { return await fn(c); } finally { await c.close(); }
}


test('pico.onnx: index, metadata and grouping', async () => {
  await withCheckpoint(PICO, async (c) => {
    assert.equal(c.format, 'onnx');
    assert.equal(c.formatDetail, 'ONNX opset 14 (ir 7)');
    assert.deepEqual(c.files, [PICO]);
    const md = c.metadata as Record<string, any>;
    assert.equal(md.irVersion, 7);
    assert.deepEqual(md.opsetImports, [{ domain: '', version: 14 }]);
    assert.equal(md.producerName, 'pytorch');
    assert.deepEqual(md.inputs, [{ name: 'input_ids', dtype: 'I64', shape: ['batch', 'seq'] }]);
    assert.equal(md.outputs[0].name, 'logits');
    assert.deepEqual(md.outputs[0].shape, ['batch', 'seq', 65]);
    // 53 initializers + one tensor per Constant node; the histogram counts every node.
    assert.equal(md.initializerCount, 53);
    assert.equal(md.constantCount, md.opTypes.Constant);
    assert.equal(c.tensors.length, 53 + md.constantCount);
    assert.equal(Object.values(md.opTypes as Record<string, number>).reduce((a, b) => a + b, 0), md.nodeCount);
    assert.equal(md.opTypes.MatMul > 16, true);

    const wte = c.get('wte.weight')!;
    assert.deepEqual(wte.shape, [65, 128]);
    assert.equal(wte.dtype, 'F32');
    assert.equal(wte.group.kind, 'embedding');
    assert.equal(c.get('h.2.ln_1.weight')!.group.label, 'block 2');
    // 16 transposed Linear weights [in, out] + the tied lm_head [128, 65].
    const matmuls = c.tensors.filter((t) => t.name.startsWith('onnx::MatMul_'));
    assert.equal(matmuls.length, 17);
    // Named onnx::MatMul_NNN, grouped by the node that consumes them (/h.N/attn/c_attn/MatMul ...).
    const perBlock = [0, 1, 2, 3].map((b) => matmuls.filter((t) => t.group.kind === 'block' && t.group.index === b).length);
    assert.deepEqual(perBlock, [4, 4, 4, 4]);
    const lmHead = matmuls.find((t) => t.group.kind === 'head')!;
    assert.deepEqual(lmHead.shape, [128, 65]);
    for (const t of c.tensors) {
      assert.equal(t.params, t.shape.reduce((a, b) => a * b, 1));
      assert.equal(t.file, PICO);
      assert.ok(t.byteOffset >= 0 && t.byteOffset + t.byteLength <= c.sizeOnDisk, t.name);
    }
  });
});

test('pico.onnx: every reference 2-D weight found by (transposed) shape and Frobenius norm (1e-5)', async () => {
  const ref = reference('pico');
  await withCheckpoint(PICO, async (c) => {
    // pico has no 2-D Constant (its one large Constant, the mask, is [1, 1, 128, 128]).
    const onnx2d = await Promise.all(c.tensors.filter((t) => t.shape.length === 2).map(async (t) => ({ t, norm: frobenius(await t.read()) })));
    assert.equal(onnx2d.length, 19);
    const used = new Set<TensorEntry>();
    for (const r of ref) {
      const exact = onnx2d.find((o) => o.t.name === r.name);
      const match = exact ?? onnx2d.find((o) => !used.has(o.t) && o.t.shape[0] === r.shape[1] && o.t.shape[1] === r.shape[0] && relErr(o.norm, r.norm) < 1e-5);
      assert.ok(match, `no ONNX tensor for ${r.name} [${r.shape}] with norm ${r.norm}`);
      if (exact) assert.deepEqual(exact.t.shape, r.shape);
      assert.ok(relErr(match.norm, r.norm) < 1e-5, `${r.name}: ${match.norm} vs ${r.norm}`);
      used.add(match.t);
    }
    // The one left over is the tied lm_head: wte transposed.
    const rest = onnx2d.filter((o) => !used.has(o.t));
    assert.equal(rest.length, 1);
    const wteRef = ref.find((r) => r.name === 'wte.weight')!;
    assert.ok(relErr(rest[0].norm, wteRef.norm) < 1e-5);
  });
});

test('stories260K.onnx: named initializers match the reference norms (1e-5), tied lm_head', async () => {
  const ref = reference('stories260k');
  await withCheckpoint(STORIES, async (c) => {
    const md = c.metadata as Record<string, any>;
    assert.equal(md.initializerCount, 47);
    assert.equal(c.tensors.length, 47 + md.constantCount);
    const inits = c.tensors.filter((t) => t.name.startsWith('model__'));
    assert.equal(inits.length, 47);
    const twoD = inits.filter((t) => t.shape.length === 2);
    assert.equal(twoD.length, 36);
    const matched = new Set<string>();
    for (const t of twoD) {
      const refName = t.name.replace(/__/g, '.');
      const r = ref.find((x) => x.name === refName);
      assert.ok(r, `no reference for ${t.name}`);
      assert.deepEqual(t.shape, r.shape);
      const norm = frobenius(await t.read());
      assert.ok(relErr(norm, r.norm) < 1e-5, `${t.name}: ${norm} vs ${r.norm}`);
      matched.add(r.name);
    }
    // The reference also lists lm_head, which the export ties to embed_tokens.
    assert.deepEqual(ref.filter((r) => !matched.has(r.name)).map((r) => r.name), ['lm_head.weight']);
    // Grouped by the `__`-separated layer index.
    assert.equal(c.get('model__layers__3__mlp__down_proj__weight')!.group.label, 'block 3');
    assert.equal(c.get('model__embed_tokens__weight')!.group.kind, 'embedding');
    assert.equal(c.get('model__norm__weight')!.group.kind, 'head');
  });
});

test('stories260K.onnx: the three 2-D Constant nodes are the causal mask and the RoPE tables', async () => {
  await withCheckpoint(STORIES, async (c) => {
    const consts2d = c.tensors.filter((t) => t.shape.length === 2 && !t.name.startsWith('model__'));
    assert.deepEqual(consts2d.map((t) => t.shape).sort(), [[256, 256], [256, 4], [256, 4]]);
    for (const t of consts2d) assert.match(t.name, /Constant_\d+_output_0$/);
    const mask = consts2d.find((t) => t.shape[1] === 256)!;
    const m = await mask.read();
    // Causal mask: 0 where key j <= query i, -inf above the diagonal.
    for (let i = 0; i < 256; i++) for (let j = 0; j < 256; j++) {
      const v = m[i * 256 + j];
      if (j <= i) assert.equal(v, 0, `mask[${i}][${j}]`); else assert.equal(v, -Infinity, `mask[${i}][${j}]`);
    }
    const tables = await Promise.all(consts2d.filter((t) => t.shape[1] === 4).map((t) => t.read()));
    // Which one is cos: the one with cos(0) = 1 in row 0.
    const cos = tables.find((x) => x[0] === 1)!;
    const sin = tables.find((x) => x !== cos)!;
    // RoPE, head_dim 8, theta 10000: angle(t, i) = t * 10000^(-2i/8); cos^2 + sin^2 = 1 everywhere.
    for (let t = 0; t < 256; t++) for (let i = 0; i < 4; i++) {
      const k = t * 4 + i;
      const angle = t * Math.pow(10000, -i / 4);
      assert.ok(Math.abs(cos[k] * cos[k] + sin[k] * sin[k] - 1) < 1e-6, `cos^2+sin^2 at ${t},${i}`);
      assert.ok(Math.abs(cos[k] - Math.cos(angle)) < 1e-4 && Math.abs(sin[k] - Math.sin(angle)) < 1e-4, `rope at ${t},${i}`);
    }
  });
});

for (const [embedded, external, dataName] of [[PICO, PICO_EXT, 'pico_ext.onnx.data'], [STORIES, STORIES_EXT, 'stories260K_ext.onnx.data']] as const) {
  test(`${path.basename(external)}: external data decodes bit-identically to ${path.basename(embedded)}`, async () => {
    const a = await openOnnx(embedded);
    const b = await openOnnx(external);
    try {
      const dataFile = path.join(path.dirname(external), dataName);
      assert.deepEqual(b.files, [external, dataFile]);
      assert.deepEqual((b.metadata as Record<string, unknown>).externalDataFiles, [dataName]);
      assert.equal(b.tensors.length, a.tensors.length);
      let externalCount = 0;
      for (const ta of a.tensors) {
        const tb = b.get(ta.name);
        assert.ok(tb, ta.name);
        assert.deepEqual([tb.dtype, tb.shape, tb.group], [ta.dtype, ta.shape, ta.group]);
        if (tb.file === dataFile) externalCount++;
        const [ra, rb] = await Promise.all([ta.readRaw(), tb.readRaw()]);
        assert.ok(Buffer.from(ra).equals(Buffer.from(rb)), `raw bytes of ${ta.name}`);
        const [fa, fb] = await Promise.all([ta.read(), tb.read()]);
        assert.ok(Buffer.from(fa.buffer, fa.byteOffset, fa.byteLength).equals(Buffer.from(fb.buffer, fb.byteOffset, fb.byteLength)), `decoded ${ta.name}`);
      }
      assert.ok(externalCount >= 27, `only ${externalCount} tensors in the external file`);
      assert.equal(b.sizeOnDisk, b.files.reduce((s, f) => s + readFileSync(f).length, 0));
    } finally {
      await a.close();
      await b.close();
    }
  });
}

test('windowed walk (the path for files above the in-memory limit) gives the same index', async () => {
  for (const file of [STORIES, PICO_EXT]) {
    const whole = await openOnnx(file);
    // A 256-byte window forces a positional read at nearly every field.
    const windowed = await openOnnx(file, { inMemoryLimit: 0, windowBytes: 256 });
    try {
      const key = (c: Checkpoint) => c.tensors.map((t) => [t.name, t.dtype, t.shape, t.file, t.byteOffset, t.byteLength, t.group.label]);
      assert.deepEqual(key(windowed), key(whole));
      assert.deepEqual(windowed.metadata, whole.metadata);
      const t = windowed.tensors.find((x) => x.shape.length === 2)!;
      assert.deepEqual(await t.read(), await whole.get(t.name)!.read());
    } finally {
      await whole.close();
      await windowed.close();
    }
  }
});

test('open() recognises ONNX by its first bytes and dispatches to the reader', async () => {
  const c = await open(STORIES);
  try {
    assert.equal(c.format, 'onnx');
    assert.ok(c.get('model__layers__0__self_attn__q_proj__weight'));
  } finally {
    await c.close();
  }
});

/** Lists initializers and Constant `value` tensors with Debian's python3-onnx, or says why not. */
function pythonIndex(file: string): { skip: string } | { inits: Array<[string, number[], number]>; consts: Array<[string, number[], number]>; nodes: number } {
  const script = `
import json, sys
try:
    import onnx
except Exception as e:
    print(json.dumps({"skip": "python3-onnx not importable: %s" % e})); sys.exit(0)
m = onnx.load(sys.argv[1], load_external_data=False)
inits = [[t.name, list(t.dims), t.data_type] for t in m.graph.initializer]
consts = []
for n in m.graph.node:
    if n.op_type == "Constant":
        for a in n.attribute:
            if a.name == "value":
                consts.append([n.output[0], list(a.t.dims), a.t.data_type])
print(json.dumps({"inits": inits, "consts": consts, "nodes": len(m.graph.node)}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { skip: `/usr/bin/python3 not runnable: ${r.error.message}` };
  if (r.status !== 0) return { skip: `/usr/bin/python3 failed: ${r.stderr.slice(0, 200)}` };
  return JSON.parse(r.stdout);
}

const DTYPE_OF_ONNX: Record<number, string> = { 1: 'F32', 6: 'I32', 7: 'I64', 9: 'BOOL', 10: 'F16', 11: 'F64', 16: 'BF16' };

for (const file of [PICO, STORIES_EXT]) {
  test(`index matches python3-onnx for ${path.basename(file)}`, async (t) => {
    const py = pythonIndex(file);
    if ('skip' in py) {
      t.skip(py.skip);
      return;
    }
    await withCheckpoint(file, async (c) => {
      assert.equal((c.metadata as Record<string, unknown>).nodeCount, py.nodes);
      for (const [name, dims, dataType] of [...py.inits, ...py.consts]) {
        const e = c.get(name);
        assert.ok(e, `python lists ${name}`);
        assert.deepEqual(e.shape, dims, name);
        assert.equal(e.dtype, DTYPE_OF_ONNX[dataType], name);
      }
      assert.equal(c.tensors.length, py.inits.length + py.consts.length);
    });
  });
}
