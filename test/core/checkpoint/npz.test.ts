import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openNpz } from '../../../src/core/checkpoint/npz';
import { open } from '../../../src/core/checkpoint/open';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { DENSE_DTYPE_BYTES } from '../../../src/core/checkpoint/dtype';
import type { Checkpoint } from '../../../src/core/checkpoint/types';
import { buildZip, f32bytes } from './zipTestUtil';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-npz-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const PYTHON = '/usr/bin/python3';

async function withNpz<T>(file: string, fn: (c: Checkpoint) => Promise<T>): Promise<T> {
  const c = await openNpz(file);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** A version 1.0 .npy file: magic, version, u16 header length, dict literal padded to 64 bytes, data. */
function npy(descr: string, shape: number[], data: Uint8Array, fortran = false): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const header = dict.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.length);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, total);
  return out;
}

const NUMPY_SCRIPT = String.raw`
import json, sys, os
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
m = rng.standard_normal((5, 7)).astype(np.float32)
arrays = {
    "matrix": m,
    "fortran": np.asfortranarray(rng.standard_normal((4, 3)).astype(np.float32)),
    "fortran3d": np.asfortranarray(rng.standard_normal((2, 3, 4))),
    "f64": rng.standard_normal(6),
    "f16": rng.standard_normal((2, 2)).astype(np.float16),
    "i64": np.array([-3, 2**40, 7], dtype=np.int64),
    "i8": np.array([-128, 127], dtype=np.int8),
    "u8": np.array([0, 255, 9], dtype=np.uint8),
    "flags": np.array([True, False]),
    "bigendian": np.array([1.5, -2.25, 1e-3], dtype=">f4"),
    "scalar": np.float32(2.5),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "layers/0/weight": rng.standard_normal((3, 2)).astype(np.float32),
    "labels": np.array(["cat", "dog"]),
}
np.savez(os.path.join(out, "plain.npz"), rng.standard_normal(3).astype(np.float32), **arrays)
np.savez_compressed(os.path.join(out, "compressed.npz"), rng.standard_normal(3).astype(np.float32), **arrays)
with np.load(os.path.join(out, "plain.npz")) as p, np.load(os.path.join(out, "compressed.npz")) as c:
    def desc(a):
        return {"shape": list(a.shape), "dtype": a.dtype.str, "values": np.ascontiguousarray(a).astype(np.float64).ravel().tolist()}
    expected = {
        "plain": {k: desc(p[k]) for k in p.files if k != "labels"},
        "compressed": {k: desc(c[k]) for k in c.files if k != "labels"},
    }
json.dump(expected, open(os.path.join(out, "expected.json"), "w"))
`;

const NUMPY_DTYPES: Record<string, string> = {
  '<f4': 'F32', '>f4': 'F32', '<f8': 'F64', '<f2': 'F16', '<i8': 'I64', '|i1': 'I8', '|u1': 'U8', '|b1': 'BOOL',
};

test('np.savez and np.savez_compressed archives decode to the values numpy loads', async (t) => {
  const probe = fs.existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import numpy']) : undefined;
  if (!probe || probe.status !== 0) {
    t.skip(`${PYTHON} has no numpy module: skipping the numpy-generated .npz files`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(tmp, 'np-'));
  const r = spawnSync(PYTHON, ['-c', NUMPY_SCRIPT, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, Record<string, { shape: number[]; dtype: string; values: number[] }>>;
  for (const kind of ['plain', 'compressed'] as const) {
    const file = path.join(dir, `${kind}.npz`);
    await withNpz(file, async (c) => {
      assert.equal(c.format, 'npz');
      assert.equal(c.formatDetail, kind === 'plain' ? 'NumPy .npz' : 'NumPy .npz (compressed)');
      assert.deepEqual(c.tensors.map((x) => x.name).sort(), Object.keys(expected[kind]).sort());
      // The string array cannot become numbers: listed as skipped, not fatal.
      assert.deepEqual((c.metadata.skipped as Array<{ name: string }>).map((s) => s.name), ['labels']);
      const bytes = fs.readFileSync(file);
      for (const [name, e] of Object.entries(expected[kind])) {
        const entry = c.get(name)!;
        assert.deepEqual(entry.shape, e.shape, name);
        assert.equal(entry.dtype, NUMPY_DTYPES[e.dtype], `${name} ${e.dtype}`);
        assert.deepEqual([...(await entry.read())], e.values.map((v) => Math.fround(v)), name);
        const raw = await entry.readRaw();
        assert.equal(raw.length, entry.params * DENSE_DTYPE_BYTES[entry.dtype], name);
        if (kind === 'plain') {
          // np.savez stores members: the data is a byte range of the file.
          assert.equal(entry.byteLength, raw.length);
          assert.deepEqual(new Uint8Array(bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength)), raw, name);
        }
      }
    });
    // open() picks the npz reader by extension.
    const c = await open(file);
    assert.equal(c.format, 'npz');
    await c.close();
  }
});

test('hand-made .npz: stored and deflated members, Fortran order, and lazy byte ranges', async () => {
  const file = path.join(tmp, 'hand.npz');
  // Fortran-order 2x3 [[1,2,3],[4,5,6]] is stored column by column: 1 4 2 5 3 6.
  fs.writeFileSync(file, buildZip([
    { name: 'w.npy', data: npy('<f4', [2, 3], f32bytes([1, 4, 2, 5, 3, 6]), true) },
    { name: 'b.npy', data: npy('<f4', [3], f32bytes([7, 8, 9])), method: 8 },
    { name: 'notes.txt', data: new Uint8Array(4) },
  ], { zip64: true }));
  await withNpz(file, async (c) => {
    assert.deepEqual(c.tensors.map((t) => [t.name, t.shape]), [['w', [2, 3]], ['b', [3]]]);
    assert.deepEqual([...(await c.get('w')!.read())], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...(await c.get('b')!.read())], [7, 8, 9]);
    assert.equal(c.metadata.compressedMembers, 1);
    assert.equal(c.metadata.zip64, true);
  });
});

test('broken .npz members are refused naming the member', async () => {
  const cases: Array<[Uint8Array, RegExp]> = [
    [buildZip([{ name: 'x.npy', data: npy('<f4', [10], f32bytes([1, 2])) }]), /npz member "x\.npy": <f4 x 10 needs 168 bytes, the member has 136/],
    [buildZip([{ name: 'x.npy', data: new TextEncoder().encode('not numpy at all') }]), /npz member "x\.npy": .*magic/],
    [buildZip([{ name: 'y.npy', data: npy('<f4', [2], f32bytes([1, 2])).subarray(0, 30) }]), /npz member "y\.npy": .*header ends at byte/],
    [buildZip([{ name: '../y.npy', data: npy('<f4', [2], f32bytes([1, 2])) }]), /zip entry "\.\.\/y\.npy" has a '\.\.' segment/],
    [buildZip([{ name: 'readme.txt', data: new Uint8Array(3) }]), /no \.npy members/],
  ];
  for (const [i, [bytes, pattern]] of cases.entries()) {
    const file = path.join(tmp, `bad${i}.npz`);
    fs.writeFileSync(file, bytes);
    await assert.rejects(openNpz(file), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, String(e));
      assert.match(e.message, pattern);
      return true;
    });
  }
});
