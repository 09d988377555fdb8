import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import fc from 'fast-check';
import { openNpy, parseNpy, decodeNpyData, fortranToC, writeNpy } from '../../../src/core/checkpoint/npy';
import { open } from '../../../src/core/checkpoint/open';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { floatToHalf } from '../../../src/core/checkpoint/dtype';
import { dictOf, npyBytes } from './npyTestUtil';

let dir: string;
before(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-npy-')); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

async function put(name: string, bytes: Uint8Array): Promise<string> {
  const p = path.join(dir, name);
  await fsp.writeFile(p, bytes);
  return p;
}

/** Big-endian bytes of `values` for an element writer of `size` bytes. */
function beBytes(values: number[], size: number, set: (dv: DataView, at: number, v: number) => void): Uint8Array {
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => set(dv, i * size, v));
  return out;
}

test('little- and big-endian dtypes decode to the stored values', async () => {
  // Each value is exact in float16 (between 512 and 1024 the f16 spacing is 0.5).
  const vals = [1.5, -2, 0, 640.5, -0.125, 7];
  const cases: Array<{ descr: string; data: Uint8Array; expect: number[] }> = [
    { descr: '<f4', data: new Uint8Array(new Float32Array(vals).buffer), expect: vals },
    { descr: '<f8', data: new Uint8Array(new Float64Array(vals).buffer), expect: vals },
    { descr: '<f2', data: new Uint8Array(new Uint16Array(vals.map(floatToHalf)).buffer), expect: vals },
    { descr: '>f4', data: beBytes(vals, 4, (dv, a, v) => dv.setFloat32(a, v)), expect: vals },
    { descr: '>f8', data: beBytes(vals, 8, (dv, a, v) => dv.setFloat64(a, v)), expect: vals },
    { descr: '>f2', data: beBytes(vals, 2, (dv, a, v) => dv.setUint16(a, floatToHalf(v))), expect: vals },
    { descr: '<i8', data: new Uint8Array(new BigInt64Array([-3n, 2n ** 33n, 0n, 5n, -1n, 9n]).buffer), expect: [-3, 2 ** 33, 0, 5, -1, 9] },
    { descr: '>i8', data: beBytes([-3, 2 ** 33, 0, 5, -1, 9], 8, (dv, a, v) => dv.setBigInt64(a, BigInt(v))), expect: [-3, 2 ** 33, 0, 5, -1, 9] },
    { descr: '<i4', data: new Uint8Array(new Int32Array([-70000, 1, 2, 3, 4, 5]).buffer), expect: [-70000, 1, 2, 3, 4, 5] },
    { descr: '>i2', data: beBytes([-300, 1, 2, 3, 4, 32767], 2, (dv, a, v) => dv.setInt16(a, v)), expect: [-300, 1, 2, 3, 4, 32767] },
    { descr: '<i2', data: new Uint8Array(new Int16Array([-300, 1, 2, 3, 4, 32767]).buffer), expect: [-300, 1, 2, 3, 4, 32767] },
    { descr: '|i1', data: new Uint8Array(new Int8Array([-128, 127, 0, 1, -1, 2]).buffer), expect: [-128, 127, 0, 1, -1, 2] },
    { descr: '|u1', data: new Uint8Array([255, 0, 1, 2, 3, 4]), expect: [255, 0, 1, 2, 3, 4] },
    { descr: '<u2', data: new Uint8Array(new Uint16Array([65535, 0, 1, 2, 3, 4]).buffer), expect: [65535, 0, 1, 2, 3, 4] },
    { descr: '>u4', data: beBytes([4e9, 0, 1, 2, 3, 4], 4, (dv, a, v) => dv.setUint32(a, v)), expect: [4e9, 0, 1, 2, 3, 4] },
    { descr: '<u8', data: new Uint8Array(new BigUint64Array([2n ** 40n, 0n, 1n, 2n, 3n, 4n]).buffer), expect: [2 ** 40, 0, 1, 2, 3, 4] },
    { descr: '|b1', data: new Uint8Array([1, 0, 0, 1, 1, 0]), expect: [1, 0, 0, 1, 1, 0] },
  ];
  for (const [i, c] of cases.entries()) {
    const file = await put(`dt${i}.npy`, npyBytes(dictOf(c.descr, false, [2, 3]), c.data));
    const ckpt = await openNpy(file);
    try {
      const t = ckpt.tensors[0];
      assert.deepEqual(t.shape, [2, 3], c.descr);
      assert.deepEqual(Array.from(await t.read()), c.expect.map(Math.fround), c.descr);
      assert.equal(ckpt.metadata.descr, c.descr);
    } finally {
      await ckpt.close();
    }
  }
});

test('Fortran-order arrays come back in C order', async () => {
  // A 2x3 matrix A[i][j] = 10 i + j stored column-major: A00 A10 A01 A11 A02 A12.
  const file = await put('f2d.npy', npyBytes(dictOf('<f4', true, [2, 3]), new Uint8Array(new Float32Array([0, 10, 1, 11, 2, 12]).buffer)));
  const c = await openNpy(file);
  assert.deepEqual(Array.from(await c.tensors[0].read()), [0, 1, 2, 10, 11, 12]);
  await c.close();
  // 3-d, big-endian f8: element (i,j,k) = 100 i + 10 j + k sits at i + 2 j + 6 k in the file.
  const shape = [2, 3, 4];
  const stored = new Array<number>(24);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) stored[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
  const file3 = await put('f3d.npy', npyBytes(dictOf('>f8', true, shape), beBytes(stored, 8, (dv, a, v) => dv.setFloat64(a, v)), 2));
  const c3 = await openNpy(file3);
  const expect: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expect.push(100 * i + 10 * j + k);
  assert.deepEqual(Array.from(await c3.tensors[0].read()), expect);
  assert.equal(c3.formatDetail, 'npy v2.0');
  await c3.close();
});

test('fortranToC equals the index formula on random shapes (property)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 5 }), (shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const src = Float32Array.from({ length: n }, (_, i) => i);
    const out = fortranToC(src, shape);
    // Row-major position r of index (i_0..i_{d-1}) holds src[sum_k i_k prod_{j<k} d_j].
    for (let r = 0; r < n; r++) {
      let rem = r;
      let f = 0;
      const idx = new Array<number>(shape.length);
      for (let k = shape.length - 1; k >= 0; k--) { idx[k] = rem % shape[k]; rem = Math.floor(rem / shape[k]); }
      let stride = 1;
      for (let k = 0; k < shape.length; k++) { f += idx[k] * stride; stride *= shape[k]; }
      if (out[r] !== f) return false;
    }
    return true;
  }), { numRuns: 200, seed: 7 });
});

test('0-d and 1-d arrays; tensor named after the file stem; open() detects .npy', async () => {
  const scalar = await put('temperature.npy', npyBytes(dictOf('<f8', false, []), new Uint8Array(new Float64Array([0.7]).buffer), 3));
  const c = await open(scalar);
  assert.equal(c.format, 'npy');
  assert.equal(c.tensors[0].name, 'temperature');
  assert.deepEqual(c.tensors[0].shape, []);
  assert.equal(c.tensors[0].params, 1);
  assert.deepEqual(Array.from(await c.tensors[0].read()), [Math.fround(0.7)]);
  assert.equal(c.formatDetail, 'npy v3.0');
  await c.close();
  const vec = await put('.npy', npyBytes(dictOf('<i4', false, [3]), new Uint8Array(new Int32Array([5, 6, 7]).buffer)));
  const v = await openNpy(vec);
  assert.equal(v.tensors[0].name, 'array');
  assert.deepEqual(v.tensors[0].shape, [3]);
  assert.equal(v.tensors[0].dtype, 'I32');
  assert.equal(v.tensors[0].byteOffset, 128); // 10 + 59-character dict + '\n' rounds up to 128
  assert.equal(v.tensors[0].byteLength, 12);
  assert.deepEqual(Array.from(await v.tensors[0].read()), [5, 6, 7]);
  await v.close();
});

test('writeNpy: v1.0 header padded to 64, <f4 C order, round trip, atomic replace', async () => {
  const target = path.join(dir, 'out', 'w.npy');
  await fsp.mkdir(path.dirname(target));
  for (const shape of [[], [5], [3, 4], [2, 3, 5], [0, 7]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 1e3);
    await writeNpy(target, data, shape);
    const bytes = new Uint8Array(await fsp.readFile(target));
    const h = parseNpy(bytes, target);
    assert.equal(h.dataOffset % 64, 0);
    assert.deepEqual(h.version, [1, 0]);
    assert.equal(h.descr, '<f4');
    assert.equal(h.fortranOrder, false);
    assert.deepEqual(h.shape, shape);
    assert.equal(bytes.length, h.dataOffset + 4 * n);
    assert.equal(bytes[h.dataOffset - 1], 0x0a, 'header ends with a newline');
    assert.deepEqual(decodeNpyData(bytes.subarray(h.dataOffset), h), data);
  }
  // Only the target remains: no temporary files beside it.
  assert.deepEqual(await fsp.readdir(path.dirname(target)), ['w.npy']);
});

test('writeNpy: a failed write leaves no temporary file, and a wrong shape is refused', async () => {
  const d = path.join(dir, 'fail');
  await fsp.mkdir(path.join(d, 'target.npy'), { recursive: true }); // rename onto a directory fails
  await assert.rejects(writeNpy(path.join(d, 'target.npy'), new Float32Array(4), [4]));
  assert.deepEqual(await fsp.readdir(d), ['target.npy']);
  assert.deepEqual(await fsp.readdir(path.join(d, 'target.npy')), []);
  await assert.rejects(writeNpy(path.join(d, 'x.npy'), new Float32Array(5), [2, 2]), /has 4 elements, data has 5/);
  await assert.rejects(writeNpy(path.join(d, 'missing-dir', 'x.npy'), new Float32Array(1), [1]));
  assert.deepEqual(await fsp.readdir(d), ['target.npy']);
});

test('bad .npy input is a CheckpointError naming file and offset', async () => {
  const good = npyBytes(dictOf('<f4', false, [2, 2]), new Uint8Array(16));
  const expectError = async (bytes: Uint8Array, re: RegExp, offset?: number) => {
    const file = await put(`bad${Math.random().toString(36).slice(2)}.npy`, bytes);
    const err = await openNpy(file).then(async (c) => { try { await c.tensors[0].read(); } finally { await c.close(); } }, (e) => e);
    assert.ok(err instanceof CheckpointError, `expected CheckpointError for ${re}, got ${err}`);
    assert.equal(err.file, file);
    assert.match(err.message, re);
    if (offset !== undefined) assert.equal(err.offset, offset);
  };
  const dataAt = good.length - 16;
  await expectError(good.subarray(0, dataAt + 10), new RegExp(`data ends at byte ${dataAt + 16} .*file has ${dataAt + 10}`), dataAt);
  await expectError(good.subarray(0, 40), new RegExp(`header ends at byte ${dataAt}, only 40 bytes available`), 8);
  const v4 = good.slice(); v4[6] = 4;
  await expectError(v4, /unsupported .npy format version 4.0/, 6);
  const notNpy = good.slice(); notNpy[1] = 0x41;
  assert.throws(() => parseNpy(notNpy, 'x.npy'), (e: unknown) => e instanceof CheckpointError && /magic/.test(e.message) && e.offset === 0);
  await expectError(npyBytes(dictOf('|O', false, [2]), new Uint8Array(16)), /unsupported descr '\|O'/, 10);
  await expectError(npyBytes(dictOf('<c8', false, [2]), new Uint8Array(16)), /unsupported descr '<c8'/);
  await expectError(npyBytes("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", new Uint8Array(16)), /only plain numeric dtypes/);
  await expectError(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,, }", new Uint8Array(16)), /not a Python dict literal/);
  await expectError(npyBytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", new Uint8Array(16)), /fortran_order must be True or False/);
  await expectError(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", new Uint8Array(16)), /shape must be a tuple of non-negative integers/);
  const huge = npyBytes('{}', new Uint8Array(0), 2);
  new DataView(huge.buffer).setUint32(8, 0xfffffff0, true);
  await expectError(huge, /header length 4,294,967,280 exceeds the limit/, 8);
});

test('property: random bytes after the magic give a header or a CheckpointError', () => {
  const good = npyBytes(dictOf('<f4', true, [3, 1]), new Uint8Array(12));
  fc.assert(fc.property(
    fc.array(fc.record({ at: fc.integer({ min: 6, max: good.length - 1 }), byte: fc.nat(255) }), { minLength: 1, maxLength: 8 }),
    fc.nat(good.length),
    (muts, cut) => {
      const b = good.slice(0, Math.max(cut, 8));
      for (const m of muts) if (m.at < b.length) b[m.at] = m.byte;
      try {
        const h = parseNpy(b, 'fuzz.npy');
        assert.ok(h.dataOffset <= b.length);
        if (h.dataOffset + h.dataLength <= b.length) decodeNpyData(b.subarray(h.dataOffset), h);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
      }
    },
  ), { numRuns: 500, seed: 3 });
});
