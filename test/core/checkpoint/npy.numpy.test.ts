// Cross-checks with real numpy (Debian's /usr/bin/python3): files numpy wrote are parsed and decoded
// by us, and files we wrote are loaded by numpy. Skipped with a message when numpy is unavailable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { openNpy, parseNpy, writeNpy } from '../../../src/core/checkpoint/npy';

const PY = '/usr/bin/python3';
const probe = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' });
const skip = probe.status === 0 ? false : `${PY} with numpy is not available (${(probe.error?.message ?? probe.stderr ?? '').trim().split('\n').pop()}); numpy cross-checks skipped`;

let dir: string;
before(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-npy-numpy-')); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

function python(script: string, ...args: string[]): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
  assert.equal(r.status, 0, `python failed: ${r.stderr}`);
  return r.stdout;
}

// For every case numpy writes <name>.npy with np.lib.format.write_array at the given version, plus
// <name>.f32: the same values cast to float32 and written in C order (ndarray.tofile is always C
// order), and a manifest with what numpy itself reads back from the header.
const GENERATE = `
import json, sys, numpy as np
from numpy.lib import format as F
out = sys.argv[1]
rng = np.random.default_rng(1234)
cases = []
specs = [
  ('<f4', (3, 5), 'C', (1, 0)), ('<f4', (3, 5), 'F', (1, 0)), ('>f4', (4, 3, 2), 'F', (2, 0)),
  ('<f8', (7,), 'C', (3, 0)), ('>f8', (2, 6), 'C', (1, 0)), ('<f2', (5, 4), 'F', (1, 0)), ('>f2', (), 'C', (1, 0)),
  ('<i8', (3, 4), 'F', (2, 0)), ('>i8', (6,), 'C', (1, 0)), ('<i4', (2, 3, 4), 'C', (3, 0)), ('<i2', (4, 4), 'F', (1, 0)),
  ('|i1', (9,), 'C', (1, 0)), ('|u1', (3, 3), 'F', (1, 0)), ('<u2', (5,), 'C', (2, 0)), ('>u4', (2, 2), 'C', (1, 0)),
  ('<u8', (3,), 'C', (1, 0)), ('|b1', (4, 5), 'F', (1, 0)), ('<f4', (0, 3), 'C', (1, 0)), ('<f4', (2, 3, 4, 2), 'F', (1, 0)),
]
for i, (descr, shape, order, version) in enumerate(specs):
    dt = np.dtype(descr)
    n = int(np.prod(shape)) if shape else 1
    if dt.kind == 'f':
        vals = rng.standard_normal(n) * 100
    elif dt.kind == 'b':
        vals = rng.integers(0, 2, n)
    else:
        # within 2^24 so the float32 cast is exact and no double rounding can differ
        lo = max(np.iinfo(dt).min, -(2**24)); hi = min(np.iinfo(dt).max, 2**24)
        vals = rng.integers(lo, hi, n, endpoint=True)
    a = np.asarray(vals).astype(dt).reshape(shape)
    a = np.asfortranarray(a) if order == 'F' else np.ascontiguousarray(a)
    name = 'case%02d' % i
    with open('%s/%s.npy' % (out, name), 'wb') as f:
        F.write_array(f, a, version=version)
    a.astype('<f4').tofile('%s/%s.f32' % (out, name))
    with open('%s/%s.npy' % (out, name), 'rb') as f:
        ver = F.read_magic(f)
        shp, fortran, dtype = F._read_array_header(f, ver)
        offset = f.tell()
    cases.append(dict(name=name, descr=descr, shape=list(shp), fortran=bool(fortran), version=list(ver), dataOffset=offset, numpyDescr=dtype.str))
json.dump(cases, open(out + '/manifest.json', 'w'))
`;

const DTYPE_NAMES: Record<string, string> = { f2: 'F16', f4: 'F32', f8: 'F64', i1: 'I8', i2: 'I16', i4: 'I32', i8: 'I64', u1: 'U8', u2: 'U16', u4: 'U32', u8: 'U64', b1: 'BOOL' };

test('parseNpy and read() agree with numpy on files numpy wrote (dtypes, byte orders, C/Fortran, v1/v2/v3)', { skip }, async () => {
  const out = path.join(dir, 'from-numpy');
  await fsp.mkdir(out);
  python(GENERATE, out);
  const cases: Array<{ name: string; descr: string; shape: number[]; fortran: boolean; version: number[]; dataOffset: number }> = JSON.parse(await fsp.readFile(path.join(out, 'manifest.json'), 'utf8'));
  assert.ok(cases.length >= 19);
  const seen = { fortran: 0, v2: 0, v3: 0, bigEndian: 0 };
  for (const c of cases) {
    const file = path.join(out, `${c.name}.npy`);
    const bytes = new Uint8Array(await fsp.readFile(file));
    const h = parseNpy(bytes, file);
    assert.deepEqual(h.shape, c.shape, c.name);
    assert.equal(h.fortranOrder, c.fortran, c.name);
    assert.deepEqual(h.version, c.version, c.name);
    assert.equal(h.dataOffset, c.dataOffset, c.name);
    assert.equal(h.dtype, DTYPE_NAMES[c.descr.slice(1)], c.name);
    assert.equal(h.dataOffset + h.dataLength, bytes.length, `${c.name}: data fills the file`);
    const ckpt = await openNpy(file);
    try {
      const t = ckpt.tensors[0];
      assert.equal(t.name, c.name);
      assert.deepEqual(t.shape, c.shape);
      const expect = new Float32Array(new Uint8Array(await fsp.readFile(path.join(out, `${c.name}.f32`))).buffer);
      assert.deepEqual(await t.read(), expect, `${c.name} (${c.descr}, ${c.fortran ? 'F' : 'C'} order)`);
    } finally {
      await ckpt.close();
    }
    if (c.fortran && c.shape.length >= 2) seen.fortran++;
    if (c.version[0] === 2) seen.v2++;
    if (c.version[0] === 3) seen.v3++;
    if (c.descr.startsWith('>')) seen.bigEndian++;
  }
  // The generated set really covers what the test claims to cover.
  assert.ok(seen.fortran >= 5 && seen.v2 >= 2 && seen.v3 >= 2 && seen.bigEndian >= 4, JSON.stringify(seen));
});

test('numpy loads what writeNpy wrote: shape, dtype, C order and exact values', { skip }, async () => {
  const shapes = [[], [6], [3, 4], [2, 3, 4], [0, 5]];
  const files: string[] = [];
  const expected: number[][] = [];
  for (const [i, shape] of shapes.entries()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, k) => Math.cos(k * 0.7 + i) * 10 ** ((k % 7) - 3));
    const file = path.join(dir, `written${i}.npy`);
    await writeNpy(file, data, shape);
    files.push(file);
    expected.push(Array.from(data));
  }
  const report = JSON.parse(python(`
import json, sys, numpy as np
from numpy.lib import format as F
res = []
for p in sys.argv[1:]:
    a = np.load(p, allow_pickle=False)
    with open(p, 'rb') as f:
        ver = F.read_magic(f)
        F._read_array_header(f, ver)
        off = f.tell()
    res.append(dict(shape=list(a.shape), dtype=a.dtype.str, c=bool(a.flags['C_CONTIGUOUS']), version=list(ver), dataOffset=off,
                    values=[float(x) for x in a.ravel(order='C')]))
print(json.dumps(res))
`, ...files));
  for (const [i, r] of report.entries()) {
    assert.deepEqual(r.shape, shapes[i]);
    assert.equal(r.dtype, '<f4');
    assert.equal(r.c, true);
    assert.deepEqual(r.version, [1, 0]);
    assert.equal(r.dataOffset % 64, 0);
    assert.deepEqual(r.values, expected[i]);
  }
});
