/**
 * Models built with our own encoder (onnxProto.ts) exercise what the fixtures do not: the typed data
 * fields, F16 bits carried in int32_data, BF16 raw_data, Constant value_float(s)/value_int(s),
 * subgraph initializers of an If node, unpacked repeated fields. onnxruntime loading and running an
 * encoded model proves the encoder writes valid ONNX.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import * as ort from 'onnxruntime-node';
import { openOnnx } from '../../../src/core/checkpoint/onnx';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from '../../../src/core/checkpoint/dtype';
import {
  decodeModel, encodeMessage, encodeModel, externalDataTensor, float32Tensor, GraphProtoType, ModelProtoType, OnnxAttributeType, OnnxDataType,
  type IGraphProto, type IModelProto, type INodeProto,
} from '../../../src/core/checkpoint/onnxProto';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'onnx-encode-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
function writeModel(bytes: Uint8Array): string {
  const p = path.join(tmp, `m${fileNo++}.onnx`);
  writeFileSync(p, bytes);
  return p;
}

function model(graph: IGraphProto, opset = 17): IModelProto {
  return { ir_version: 8, opset_import: [{ domain: '', version: opset }], producer_name: 'tensor-scalpel-test', graph };
}

function f32(values: number[]): Float32Array {
  return Float32Array.from(values);
}

test('typed data fields decode: float_data, double_data, int64_data, uint64_data, int32_data (F16 bits, I8, BOOL)', async () => {
  const halfs = [1, -2, 0.5, 65504, 2 ** -24, -0];
  const g: IGraphProto = {
    name: 'typed',
    initializer: [
      { name: 'f32', dims: [2, 3], data_type: OnnxDataType.FLOAT, float_data: [1.5, -2.25, 3, 0, 1e-7, -1e30] },
      { name: 'f16', dims: [6], data_type: OnnxDataType.FLOAT16, int32_data: halfs.map(floatToHalf) },
      { name: 'f64', dims: [3], data_type: OnnxDataType.DOUBLE, double_data: [Math.PI, -1e-300, 2 ** 60] },
      { name: 'i64', dims: [4], data_type: OnnxDataType.INT64, int64_data: [-3, 0, 2 ** 40, -(2 ** 50)] },
      { name: 'u32', dims: [2], data_type: OnnxDataType.UINT32, uint64_data: [4294967295, 7] },
      { name: 'i8', dims: [3], data_type: OnnxDataType.INT8, int32_data: [-128, 127, -1] },
      { name: 'bool', dims: [3], data_type: OnnxDataType.BOOL, int32_data: [1, 0, 1] },
      { name: 'scalar', dims: [], data_type: OnnxDataType.FLOAT, float_data: [42] },
      { name: 'empty', dims: [0, 4], data_type: OnnxDataType.FLOAT },
      { name: 'text', dims: [2], data_type: OnnxDataType.STRING, string_data: [new TextEncoder().encode('a'), new TextEncoder().encode('b')] },
    ],
  };
  const c = await openOnnx(writeModel(encodeModel(model(g))));
  try {
    const read = async (n: string) => Array.from(await c.get(n)!.read());
    assert.deepEqual(c.tensors.map((t) => [t.name, t.dtype, t.shape]), [
      ['f32', 'F32', [2, 3]], ['f16', 'F16', [6]], ['f64', 'F64', [3]], ['i64', 'I64', [4]], ['u32', 'U32', [2]],
      ['i8', 'I8', [3]], ['bool', 'BOOL', [3]], ['scalar', 'F32', []], ['empty', 'F32', [0, 4]], ['text', 'STRING', [2]],
    ]);
    assert.deepEqual(await read('f32'), Array.from(f32([1.5, -2.25, 3, 0, 1e-7, -1e30])));
    assert.deepEqual(await read('f16'), halfs.map((h) => halfToFloat(floatToHalf(h))));
    assert.ok(Object.is((await read('f16'))[5], -0), 'negative zero keeps its sign bit');
    assert.deepEqual(await read('f64'), Array.from(f32([Math.PI, -1e-300, 2 ** 60])));
    assert.deepEqual(await read('i64'), [-3, 0, 2 ** 40, -(2 ** 50)]);
    assert.deepEqual(await read('u32'), [4294967295, 7].map((x) => Math.fround(x)));
    assert.deepEqual(await read('i8'), [-128, 127, -1]);
    assert.deepEqual(await read('bool'), [1, 0, 1]);
    assert.deepEqual(await read('scalar'), [42]);
    assert.deepEqual(await read('empty'), []);
    // Typed fields read raw as the dense little-endian bytes raw_data would hold.
    const raw = await c.get('f16')!.readRaw();
    assert.deepEqual(Array.from(new Uint16Array(raw.buffer, raw.byteOffset, 6)), halfs.map(floatToHalf));
    const i64raw = await c.get('i64')!.readRaw();
    assert.equal(new DataView(i64raw.buffer, i64raw.byteOffset).getBigInt64(24, true), -(2n ** 50n));
    // Strings are listed, never decoded.
    await assert.rejects(c.get('text')!.read(), (e: unknown) => e instanceof CheckpointError && /STRING/.test(e.message) && e.tensor === 'text');
    assert.deepEqual((c.metadata as Record<string, any>).undecodable.map((u: { name: string }) => u.name), ['text']);
  } finally {
    await c.close();
  }
});

test('BF16 and FP8 raw_data decode to the values their bit patterns define', async () => {
  const values = [1.5, -0.15625, 3.0e38, -7.0, 1e-20, 0];
  const bits = values.map(floatToBf16);
  const raw = new Uint8Array(new Uint16Array(bits).buffer);
  // FLOAT8E4M3FN: 0x38 = 1.0, 0xB8 = -1.0, 0x7E = 448 (max), 0x01 = 2^-9 (smallest subnormal).
  const fp8 = new Uint8Array([0x38, 0xb8, 0x7e, 0x01]);
  const c = await openOnnx(writeModel(encodeModel(model({
    name: 'g',
    initializer: [
      { name: 'bf', dims: [2, 3], data_type: OnnxDataType.BFLOAT16, raw_data: raw },
      { name: 'f8', dims: [4], data_type: OnnxDataType.FLOAT8E4M3FN, raw_data: fp8 },
    ],
  }))));
  try {
    const bf = c.get('bf')!;
    assert.equal(bf.dtype, 'BF16');
    assert.equal(bf.byteLength, 12);
    assert.deepEqual(Array.from(await bf.read()), bits.map(bf16ToFloat));
    assert.deepEqual(Array.from(await bf.readRaw()), Array.from(raw));
    assert.deepEqual(Array.from(await c.get('f8')!.read()), [1, -1, 448, 2 ** -9]);
  } finally {
    await c.close();
  }
});

test('Constant nodes: value, value_float(s), value_int(s) become tensors named after their output', async () => {
  const nodes: INodeProto[] = [
    { name: 'c0', op_type: 'Constant', output: ['vf'], attribute: [{ name: 'value_floats', type: OnnxAttributeType.FLOATS, floats: [0.25, -1, 8] }] },
    { name: 'c1', op_type: 'Constant', output: ['sf'], attribute: [{ name: 'value_float', type: OnnxAttributeType.FLOAT, f: 2.5 }] },
    { name: 'c2', op_type: 'Constant', output: ['vi'], attribute: [{ name: 'value_ints', type: OnnxAttributeType.INTS, ints: [3, -4, 2 ** 33] }] },
    { name: 'c3', op_type: 'Constant', output: ['si'], attribute: [{ name: 'value_int', type: OnnxAttributeType.INT, i: -9 }] },
    { name: '/h.5/attn/Constant', op_type: 'Constant', output: ['/h.5/attn/Constant_output_0'], attribute: [{ name: 'value', type: OnnxAttributeType.TENSOR, t: float32Tensor('', [2, 2], f32([1, 2, 3, 4])) }] },
  ];
  const c = await openOnnx(writeModel(encodeModel(model({ name: 'g', node: nodes }))));
  try {
    assert.deepEqual(c.tensors.map((t) => [t.name, t.dtype, t.shape]), [
      ['vf', 'F32', [3]], ['sf', 'F32', []], ['vi', 'I64', [3]], ['si', 'I64', []], ['/h.5/attn/Constant_output_0', 'F32', [2, 2]],
    ]);
    assert.deepEqual(Array.from(await c.get('vf')!.read()), [0.25, -1, 8]);
    assert.deepEqual(Array.from(await c.get('sf')!.read()), [2.5]);
    assert.deepEqual(Array.from(await c.get('vi')!.read()), [3, -4, 2 ** 33]);
    assert.deepEqual(Array.from(await c.get('si')!.read()), [-9]);
    const vi = await c.get('vi')!.readRaw();
    assert.equal(new DataView(vi.buffer, vi.byteOffset).getBigInt64(16, true), 2n ** 33n);
    const mat = c.get('/h.5/attn/Constant_output_0')!;
    assert.deepEqual(Array.from(await mat.read()), [1, 2, 3, 4]);
    assert.equal(mat.group.label, 'block 5');
    assert.equal((c.metadata as Record<string, any>).constantCount, 5);
  } finally {
    await c.close();
  }
});

test('If subgraphs: branch initializers and constants are listed, prefixed only on a name collision', async () => {
  const thenBranch: IGraphProto = {
    name: 'then',
    initializer: [float32Tensor('W', [2], f32([10, 20])), float32Tensor('then_only', [1, 3], f32([7, 8, 9]))],
    node: [{ op_type: 'Identity', input: ['then_only'], output: ['y'] }],
    output: [{ name: 'y' }],
  };
  const elseBranch: IGraphProto = {
    name: 'else',
    node: [{ name: 'k', op_type: 'Constant', output: ['else_const'], attribute: [{ name: 'value_floats', type: OnnxAttributeType.FLOATS, floats: [5, 6, 7] }] }],
    output: [{ name: 'else_const' }],
  };
  const g: IGraphProto = {
    name: 'main',
    initializer: [float32Tensor('W', [2, 2], f32([1, 2, 3, 4])), { name: 'cond', dims: [], data_type: OnnxDataType.BOOL, raw_data: new Uint8Array([1]) }],
    node: [{
      name: 'branch', op_type: 'If', input: ['cond'], output: ['out'],
      attribute: [
        { name: 'then_branch', type: OnnxAttributeType.GRAPH, g: thenBranch },
        { name: 'else_branch', type: OnnxAttributeType.GRAPH, g: elseBranch },
      ],
    }],
    output: [{ name: 'out' }],
  };
  const c = await openOnnx(writeModel(encodeModel(model(g))));
  try {
    assert.deepEqual(c.tensors.map((t) => t.name), ['W', 'cond', 'branch/then_branch/W', 'then_only', 'else_const']);
    assert.deepEqual(Array.from(await c.get('W')!.read()), [1, 2, 3, 4]);
    assert.deepEqual(Array.from(await c.get('branch/then_branch/W')!.read()), [10, 20]);
    assert.deepEqual(c.get('then_only')!.shape, [1, 3]);
    assert.deepEqual(Array.from(await c.get('then_only')!.read()), [7, 8, 9]);
    assert.deepEqual(Array.from(await c.get('else_const')!.read()), [5, 6, 7]);
    const md = c.metadata as Record<string, any>;
    assert.equal(md.subgraphCount, 2);
    assert.equal(md.nodeCount, 1);
    assert.equal(md.subgraphNodeCount, 2);
  } finally {
    await c.close();
  }
});

test('unpacked repeated fields (legal protobuf, written by some tools) decode like packed ones', async () => {
  // A TensorProto with float_data written element by element (tag 4, wire type 5), dims packed.
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 2).fork().int64(2).int64(2).ldelim(); // dims, packed
  w.uint32((2 << 3) | 0).int32(OnnxDataType.FLOAT);
  w.uint32((8 << 3) | 2).string('U');
  for (const v of [0.5, 1.5, -2.5, 4]) w.uint32((4 << 3) | 5).float(v);
  const tensorBytes = w.finish();
  const graphBytes = protobuf.Writer.create();
  graphBytes.uint32((5 << 3) | 2).bytes(tensorBytes);
  const graph = new Uint8Array([...encodeMessage(GraphProtoType, { name: 'g' }), ...graphBytes.finish()]);
  const head = encodeMessage(ModelProtoType, { ir_version: 8, opset_import: [{ domain: '', version: 17 }] });
  const modelBytes = protobuf.Writer.create();
  modelBytes.uint32((7 << 3) | 2).bytes(graph);
  const bytes = new Uint8Array([...head, ...modelBytes.finish()]);
  // protobufjs agrees on what the bytes say.
  assert.deepEqual(decodeModel(bytes).graph?.initializer?.[0].float_data, [0.5, 1.5, -2.5, 4]);
  const c = await openOnnx(writeModel(bytes));
  try {
    const u = c.get('U')!;
    assert.deepEqual(u.shape, [2, 2]);
    assert.deepEqual(Array.from(await u.read()), [0.5, 1.5, -2.5, 4]);
  } finally {
    await c.close();
  }
});

test('an encoded MatMul + Add model runs in onnxruntime and reads back through openOnnx', async () => {
  const W = f32([1, 2, 3, 4, 5, 6]); // [3, 2]
  const B = [0.5, -1];
  const g: IGraphProto = {
    name: 'mm',
    initializer: [float32Tensor('W', [3, 2], W)],
    node: [
      { name: 'bias', op_type: 'Constant', output: ['B'], attribute: [{ name: 'value_floats', type: OnnxAttributeType.FLOATS, floats: B }] },
      { name: 'mm', op_type: 'MatMul', input: ['X', 'W'], output: ['XW'] },
      { name: 'add', op_type: 'Add', input: ['XW', 'B'], output: ['Y'] },
    ],
    input: [{ name: 'X', type: { tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: [{ dim_param: 'n' }, { dim_value: 3 }] } } } }],
    output: [{ name: 'Y', type: { tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: [{ dim_param: 'n' }, { dim_value: 2 }] } } } }],
  };
  const bytes = encodeModel(model(g, 13));
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const X = f32([1, 0, -1, 2, 1, 0.5]); // [2, 3]
    const out = await session.run({ X: new ort.Tensor('float32', X, [2, 3]) });
    // Y[i][j] = sum_k X[i][k] W[k][j] + B[j]
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) {
      let s = B[j];
      for (let k = 0; k < 3; k++) s += X[i * 3 + k] * W[k * 2 + j];
      expected.push(s);
    }
    assert.deepEqual(out.Y.dims, [2, 2]);
    assert.deepEqual(Array.from(out.Y.data as Float32Array), expected);
  } finally {
    await session.release();
  }
  const c = await openOnnx(writeModel(bytes));
  try {
    assert.equal(c.formatDetail, 'ONNX opset 13 (ir 8)');
    assert.deepEqual(Array.from(await c.get('W')!.read()), Array.from(W));
    assert.deepEqual(Array.from(await c.get('B')!.read()), B);
    const md = c.metadata as Record<string, any>;
    assert.deepEqual(md.inputs, [{ name: 'X', dtype: 'F32', shape: ['n', 3] }]);
    assert.deepEqual(md.opTypes, { Constant: 1, MatMul: 1, Add: 1 });
  } finally {
    await c.close();
  }
});

test('sparse_initializer is listed with its dense shape and refused clearly on read', async () => {
  const g: IGraphProto = {
    name: 'sparse',
    initializer: [float32Tensor('dense', [2], f32([1, 2]))],
    sparse_initializer: [{
      values: { name: 'S', dims: [2], data_type: OnnxDataType.FLOAT, float_data: [5, 6] },
      indices: { name: 'S_idx', dims: [2], data_type: OnnxDataType.INT64, int64_data: [0, 8] },
      dims: [3, 3],
    }],
  };
  const c = await openOnnx(writeModel(encodeModel(model(g))));
  try {
    assert.deepEqual(c.tensors.map((t) => [t.name, t.dtype, t.shape]), [['dense', 'F32', [2]], ['S', 'F32', [3, 3]]]);
    await assert.rejects(c.get('S')!.read(), (e: unknown) => e instanceof CheckpointError && e.tensor === 'S' && /sparse/.test(e.message));
    assert.deepEqual((c.metadata as Record<string, any>).undecodable.map((u: { name: string }) => u.name), ['S']);
  } finally {
    await c.close();
  }
});

test('Loop body (GRAPH attribute) nested in an If branch: weights found at depth 2', async () => {
  const body: IGraphProto = { name: 'body', initializer: [float32Tensor('deep', [2, 2], f32([9, 8, 7, 6]))] };
  const thenBranch: IGraphProto = { name: 'then', node: [{ name: 'loop', op_type: 'Loop', attribute: [{ name: 'body', type: OnnxAttributeType.GRAPH, g: body }] }] };
  const g: IGraphProto = { name: 'main', node: [{ name: 'if', op_type: 'If', attribute: [{ name: 'then_branch', type: OnnxAttributeType.GRAPH, g: thenBranch }] }] };
  const c = await openOnnx(writeModel(encodeModel(model(g))));
  try {
    assert.deepEqual(c.tensors.map((t) => t.name), ['deep']);
    assert.deepEqual(Array.from(await c.get('deep')!.read()), [9, 8, 7, 6]);
    assert.equal((c.metadata as Record<string, any>).subgraphCount, 2);
  } finally {
    await c.close();
  }
});

test('external data written with externalDataTensor loads in onnxruntime and in openOnnx', async () => {
  const W = f32([0.5, -1, 2, 4]); // [2, 2]
  const pad = new Uint8Array(12).fill(0xee); // the tensor starts at byte 12 of the data file
  const data = new Uint8Array([...pad, ...new Uint8Array(W.buffer)]);
  const g: IGraphProto = {
    name: 'ext',
    initializer: [externalDataTensor('W', [2, 2], OnnxDataType.FLOAT, 'ext_w.bin', 12, 16)],
    node: [{ name: 'mm', op_type: 'MatMul', input: ['X', 'W'], output: ['Y'] }],
    input: [{ name: 'X', type: { tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: [{ dim_value: 1 }, { dim_value: 2 }] } } } }],
    output: [{ name: 'Y', type: { tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: [{ dim_value: 1 }, { dim_value: 2 }] } } } }],
  };
  const bytes = encodeModel(model(g, 13));
  const session = await ort.InferenceSession.create(bytes, { externalData: [{ path: 'ext_w.bin', data }], intraOpNumThreads: 1 });
  try {
    const out = await session.run({ X: new ort.Tensor('float32', f32([1, 1]), [1, 2]) });
    // [1, 1] x [[0.5, -1], [2, 4]] = [2.5, 3]
    assert.deepEqual(Array.from(out.Y.data as Float32Array), [2.5, 3]);
  } finally {
    await session.release();
  }
  const p = writeModel(bytes);
  writeFileSync(path.join(tmp, 'ext_w.bin'), data);
  const c = await openOnnx(p);
  try {
    const w = c.get('W')!;
    assert.deepEqual([w.file, w.byteOffset, w.byteLength], [path.join(tmp, 'ext_w.bin'), 12, 16]);
    assert.deepEqual(Array.from(await w.read()), Array.from(W));
    assert.deepEqual(c.files, [p, path.join(tmp, 'ext_w.bin')]);
  } finally {
    await c.close();
  }
});
