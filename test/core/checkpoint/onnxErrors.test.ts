/**
 * Bad ONNX input: every failure is a CheckpointError naming the file, the tensor where there is one,
 * and the byte offset — never a crash, hang or huge allocation. Ends with a fast-check property:
 * any truncation or byte mutation of real models either opens and reads, or throws CheckpointError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { openOnnx } from '../../../src/core/checkpoint/onnx';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import {
  encodeModel, float32Tensor, OnnxAttributeType, OnnxDataLocation, OnnxDataType, type IGraphProto, type IModelProto, type ITensorProto,
} from '../../../src/core/checkpoint/onnxProto';
import { readAllFailure } from '../../support/checkpointErrors';

const SHARED = path.resolve(__dirname, '../../../../shared');
const STORIES = path.join(SHARED, 'fixtures/stories260k/stories260K.onnx');
const PICO_EXT = path.join(SHARED, 'fixtures/pico/pico_ext.onnx');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'onnx-errors-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
function write(bytes: Uint8Array, dir = tmp): string {
  const p = path.join(dir, `bad${fileNo++}.onnx`);
  writeFileSync(p, bytes);
  return p;
}

function model(initializer: ITensorProto[], extra: Partial<IGraphProto> = {}): IModelProto {
  return { ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: { name: 'g', initializer, ...extra } };
}

/** Index of `needle` in `hay` (to state the exact offset an error must name). */
function find(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength));
}

/** Opens (and reads every tensor); resolves to the CheckpointError thrown, failing on anything else. */
const openError = (file: string): Promise<CheckpointError> => readAllFailure(file, openOnnx);

test('truncated protobuf: CheckpointError with file and offset', async () => {
  const bytes = readFileSync(STORIES);
  for (const cut of [1, 7, 1000, 400_000, bytes.length - 1]) {
    const file = write(bytes.subarray(0, cut));
    const e = await openError(file);
    assert.equal(e.file, file);
    assert.ok(e.offset !== undefined && e.offset <= cut, `offset ${e.offset} for cut ${cut}`);
    assert.match(e.message, /truncated|past the end|no graph/);
  }
});

test('a length-delimited field running past EOF names the field, its end and the file size', async () => {
  const good = encodeModel(model([float32Tensor('W', [2], Float32Array.from([1, 2]))]));
  // ModelProto.doc_string (field 6, wire type 2) declaring 300 bytes, followed by 3.
  const bytes = new Uint8Array([...good, 0x32, 0xac, 0x02, 1, 2, 3]);
  const file = write(bytes);
  const e = await openError(file);
  assert.equal(e.offset, good.length + 1, 'offset of the length prefix');
  assert.match(e.message, /field 6 declares 300 bytes/);
  assert.match(e.message, new RegExp(`file \\(${bytes.length} bytes\\)`));
});

test('raw_data size not matching dims x dtype', async () => {
  const raw = new Uint8Array(20).fill(0x3f);
  const bytes = encodeModel(model([{ name: 'W', dims: [2, 3], data_type: OnnxDataType.FLOAT, raw_data: raw }]));
  const e = await openError(write(bytes));
  assert.equal(e.tensor, 'W');
  assert.equal(e.offset, find(bytes, raw));
  assert.match(e.message, /raw_data has 20 bytes, but dims \[2, 3\] of FLOAT need 24/);
});

test('typed data count not matching dims', async () => {
  const e = await openError(write(encodeModel(model([{ name: 'T', dims: [2, 3], data_type: OnnxDataType.FLOAT, float_data: [1, 2, 3, 4, 5] }]))));
  assert.equal(e.tensor, 'T');
  assert.match(e.message, /float_data holds 5 values, but dims \[2, 3\] of FLOAT need 6/);
  const e2 = await openError(write(encodeModel(model([{ name: 'H', dims: [1], data_type: OnnxDataType.FLOAT16, int32_data: [70000] }]))));
  assert.equal(e2.tensor, 'H');
  assert.match(e2.message, /70000 does not fit F16/);
});

test('unknown data_type', async () => {
  const bytes = encodeModel(model([{ name: 'X', dims: [1], data_type: 99, raw_data: new Uint8Array(4) }]));
  const e = await openError(write(bytes));
  assert.equal(e.tensor, 'X');
  assert.ok(e.offset !== undefined && bytes[e.offset] === 99, 'offset points at the data_type value');
  assert.match(e.message, /unknown data_type 99/);
});

function externalModel(location: string, offset: number, length: number, dims = [6]): IModelProto {
  return model([{
    name: 'E', dims, data_type: OnnxDataType.FLOAT, data_location: OnnxDataLocation.EXTERNAL,
    external_data: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
  }]);
}

test('external data: past the end of its file, missing file, "..", absolute path', async () => {
  const dir = mkdtempSync(path.join(tmp, 'ext-'));
  const dataFile = path.join(dir, 'weights.bin');
  writeFileSync(dataFile, new Uint8Array(16));

  const past = await openError(write(encodeModel(externalModel('weights.bin', 8, 24)), dir));
  assert.equal(past.file, dataFile);
  assert.equal(past.tensor, 'E');
  assert.equal(past.offset, 8);
  assert.match(past.message, /ends at byte 32, file has 16/);

  const missing = await openError(write(encodeModel(externalModel('nope.bin', 0, 24)), dir));
  assert.equal(missing.tensor, 'E');
  assert.match(missing.message, /external data file "nope.bin" not found/);

  mkdirSync(path.join(dir, 'sub'));
  copyFileSync(dataFile, path.join(dir, 'sub', 'w.bin'));
  const escape = await openError(write(encodeModel(externalModel('sub/../../weights.bin', 0, 24)), dir));
  assert.equal(escape.tensor, 'E');
  assert.match(escape.message, /contains "\.\."/);

  const absolute = await openError(write(encodeModel(externalModel(dataFile, 0, 16, [4])), dir));
  assert.match(absolute.message, /is absolute/);

  const wrongLength = await openError(write(encodeModel(externalModel('weights.bin', 0, 12)), dir));
  assert.match(wrongLength.message, /length 12 does not match dims \[6\] of FLOAT \(24 bytes\)/);

  // And the good case in a subdirectory: read through, listed in files.
  const ok = await openOnnx(write(encodeModel(externalModel('sub/w.bin', 0, 16, [4])), dir));
  try {
    assert.deepEqual(ok.files.slice(1), [path.join(dir, 'sub', 'w.bin')]);
    assert.deepEqual(Array.from(await ok.tensors[0].read()), [0, 0, 0, 0]);
  } finally {
    await ok.close();
  }
});

test('not a model: no graph, garbage, a Constant without a value', async () => {
  const noGraph = await openError(write(encodeModel({ ir_version: 8, opset_import: [{ domain: '', version: 17 }] })));
  assert.match(noGraph.message, /no graph/);
  const garbage = await openError(write(new Uint8Array([0x08, 0x07, 0xff, 0xff, 0xff])));
  assert.ok(garbage.offset !== undefined);
  const noValue = await openError(write(encodeModel(model([], { node: [{ name: 'c', op_type: 'Constant', output: ['x'], attribute: [{ name: 'foo', type: OnnxAttributeType.INT, i: 1 }] }] }))));
  assert.equal(noValue.tensor, 'x');
  assert.match(noValue.message, /no value attribute/);
});

/** A small model touching every code path: typed fields, constants, subgraph, external data. */
function richModel(): Uint8Array {
  const sub: IGraphProto = {
    name: 'body',
    initializer: [float32Tensor('sub_w', [2, 2], Float32Array.from([1, 2, 3, 4]))],
    node: [{ name: 'k', op_type: 'Constant', output: ['sub_c'], attribute: [{ name: 'value_ints', type: OnnxAttributeType.INTS, ints: [1, 2, 3] }] }],
  };
  return encodeModel(model([
    float32Tensor('w', [3, 2], Float32Array.from([1, 2, 3, 4, 5, 6])),
    { name: 'h', dims: [2], data_type: OnnxDataType.FLOAT16, int32_data: [0x3c00, 0xc000] },
    { name: 'l', dims: [2], data_type: OnnxDataType.INT64, int64_data: [5, -5] },
    { name: 'd', dims: [1], data_type: OnnxDataType.DOUBLE, double_data: [0.5] },
    { name: 'e', dims: [4], data_type: OnnxDataType.FLOAT, data_location: OnnxDataLocation.EXTERNAL, external_data: [{ key: 'location', value: 'rich.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: '16' }] },
  ], {
    node: [
      { name: '/h.1/c', op_type: 'Constant', output: ['c'], attribute: [{ name: 'value_floats', type: OnnxAttributeType.FLOATS, floats: [1, 2] }] },
      { name: 'if', op_type: 'If', input: ['cond'], output: ['o'], attribute: [{ name: 'then_branch', type: OnnxAttributeType.GRAPH, g: sub }, { name: 'else_branch', type: OnnxAttributeType.GRAPH, g: sub }] },
    ],
    input: [{ name: 'cond', type: { tensor_type: { elem_type: OnnxDataType.BOOL, shape: { dim: [] } } } }],
  }));
}

/** Any truncation or mutation: open() and read() succeed or throw CheckpointError, nothing else. */
async function survives(bytes: Uint8Array, dir: string): Promise<void> {
  const file = path.join(dir, 'mutant.onnx');
  writeFileSync(file, bytes);
  try {
    const c = await openOnnx(file);
    try {
      for (const t of c.tensors) {
        await t.read().catch((e) => { if (!(e instanceof CheckpointError)) throw e; });
      }
    } finally {
      await c.close();
    }
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
  }
}

const mutation = (len: number) => fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.integer({ min: 0, max: len - 1 }) }),
  fc.record({ kind: fc.constant('flip' as const), edits: fc.array(fc.tuple(fc.integer({ min: 0, max: len - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.integer({ min: 0, max: len }), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
);

function apply(base: Uint8Array, m: { kind: 'truncate'; at: number } | { kind: 'flip'; edits: Array<[number, number]> } | { kind: 'insert'; at: number; bytes: Uint8Array }): Uint8Array {
  if (m.kind === 'truncate') return base.subarray(0, m.at);
  if (m.kind === 'insert') return new Uint8Array([...base.subarray(0, m.at), ...m.bytes, ...base.subarray(m.at)]);
  const out = base.slice();
  for (const [i, v] of m.edits) out[i] = v;
  return out;
}

test('property: mutated or truncated models open+read or throw CheckpointError (no other error, no hang)', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(tmp, 'fuzz-'));
  writeFileSync(path.join(dir, 'rich.bin'), new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer));
  const rich = richModel();
  await survives(rich, dir); // the unmutated model opens
  await fc.assert(fc.asyncProperty(mutation(rich.length), async (m) => survives(apply(rich, m), dir)), { numRuns: 300, seed: 20261123 });

  // A real export (header of pico_ext.onnx: 487 nodes, 158 Constants, 26 initializers in its .data).
  copyFileSync(PICO_EXT + '.data', path.join(dir, 'pico_ext.onnx.data'));
  const pico = readFileSync(PICO_EXT);
  await fc.assert(fc.asyncProperty(mutation(pico.length), async (m) => survives(apply(pico, m), dir)), { numRuns: 60, seed: 7 });
});
