import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { openPytorch } from '../../../src/core/checkpoint/pytorch';
import { open } from '../../../src/core/checkpoint/open';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import type { Checkpoint } from '../../../src/core/checkpoint/types';
import { DENSE_DTYPE_BYTES } from '../../../src/core/checkpoint/dtype';
import { PickleWriter, buildTorchZip, buildZip, f32bytes } from './zipTestUtil';

const SHARED = path.resolve(__dirname, '../../../../shared');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-pytorch-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

interface RefTensor { name: string; shape: number[]; singularValues: number[] }
function reference(model: string): RefTensor[] {
  return JSON.parse(fs.readFileSync(path.join(SHARED, 'reference', `${model}.spectra.json`), 'utf8')).tensors;
}

/** ||W||_F = sqrt(sum_ij w_ij^2), accumulated in float64. */
function frobenius(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

async function withCheckpoint<T>(file: string, fn: (c: Checkpoint) => Promise<T>): Promise<T> {
  const c = await openPytorch(file);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

for (const [model, file] of [['pico', 'fixtures/pico/pico.pt'], ['stories260k', 'fixtures/stories260k/stories260K.pt']] as const) {
  test(`${file}: names, shapes, dtypes and Frobenius norms match the LAPACK reference (1e-5 relative)`, async () => {
    await withCheckpoint(path.join(SHARED, file), async (c) => {
      assert.equal(c.format, 'pytorch');
      assert.equal(c.formatDetail, 'PyTorch zip (torch.save)');
      const ref = reference(model);
      const refNames = new Set(ref.map((r) => r.name));
      for (const r of ref) {
        const t = c.get(r.name);
        assert.ok(t, `${r.name} missing from the .pt`);
        assert.deepEqual(t.shape, r.shape, r.name);
        assert.equal(t.dtype, 'F32', r.name);
        assert.equal(t.params, r.shape[0] * r.shape[1]);
        const data = await t.read();
        assert.equal(data.length, t.params);
        const expected = Math.sqrt(r.singularValues.reduce((a, s) => a + s * s, 0));
        const got = frobenius(data);
        assert.ok(Math.abs(got - expected) <= 1e-5 * expected, `${r.name}: ||W||_F ${got} vs sqrt(sum s^2) ${expected}`);
        // A contiguous view of a stored storage is a plain byte range of the file.
        assert.equal(t.byteLength, t.params * 4);
        const raw = fs.readFileSync(path.join(SHARED, file)).subarray(t.byteOffset, t.byteOffset + t.byteLength);
        assert.deepEqual(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), data);
      }
      // Every 2-D tensor of the .pt is in the reference, except pico's lm_head, which is tied to wte.
      const extra2d = c.tensors.filter((t) => t.shape.length === 2 && !refNames.has(t.name)).map((t) => t.name);
      if (model === 'pico') {
        assert.deepEqual(extra2d, ['lm_head.weight']);
        const head = c.get('lm_head.weight')!;
        const wte = c.get('wte.weight')!;
        assert.equal(head.byteOffset, wte.byteOffset, 'tied weights share one storage');
        assert.deepEqual(await head.read(), await wte.read());
        assert.equal(c.metadata.tensorsSharingStorage, 2);
      } else {
        assert.deepEqual(extra2d, []);
        assert.equal(c.metadata.tensorsSharingStorage, 0);
      }
      assert.equal(c.metadata.byteorder, 'little');
      // The dispatcher routes .pt files here too.
      const viaOpen = await open(path.join(SHARED, file));
      assert.equal(viaOpen.tensors.length, c.tensors.length);
      await viaOpen.close();
    });
  });
}

const PYTHON = '/usr/bin/python3';
/** Writes checkpoints with torch and the values torch sees, as JSON, into `dir`. */
const TORCH_SCRIPT = String.raw`
import json, os, sys
import torch
out = sys.argv[1]
torch.manual_seed(1234)
base = torch.randn(6, 5)
arange = torch.arange(40, dtype=torch.float32)
wide = torch.randn(4, 8)
cube = torch.randn(2, 3, 4)
views = {
    "base": base,
    "transposed": base.t(),                       # non-contiguous, shares base's storage
    "offset_view": arange[7:27].view(4, 5),       # storage offset 7
    "offset_row": arange[33:38],                  # same storage, offset 33
    "every_other_col": wide[:, ::2],              # stride (8, 2)
    "permuted": cube.permute(2, 0, 1),            # 3-D non-contiguous
    "half": torch.randn(3, 4).half(),
    "bf16": torch.randn(3, 4).to(torch.bfloat16),
    "long": torch.tensor([[1, -2, 3], [2**40, -5, 7]], dtype=torch.int64),
    "int32": torch.tensor([-7, 8, 2**30], dtype=torch.int32),
    "int16": torch.tensor([-300, 300], dtype=torch.int16),
    "int8": torch.tensor([-128, 127, 0], dtype=torch.int8),
    "uint8": torch.tensor([0, 255, 17], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "double": torch.randn(2, 3, dtype=torch.float64),
    "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 4),
    "param": torch.nn.Parameter(torch.randn(2, 2)),
}
torch.save(views, os.path.join(out, "views.pt"))
lin = torch.nn.Linear(3, 2)
opt = torch.optim.Adam(lin.parameters())
lin(torch.randn(1, 3)).sum().backward()
opt.step()
nested = {"state_dict": lin.state_dict(), "epoch": 7, "optimizer": opt.state_dict(), "name": "run-1"}
torch.save(nested, os.path.join(out, "nested.pt"))
sub = {"encoder": {"layer": {"w": torch.randn(2, 3)}}, "heads": [torch.randn(2), torch.randn(3)]}
torch.save(sub, os.path.join(out, "sub.pt"))
torch.jit.save(torch.jit.script(lin), os.path.join(out, "scripted.pt"))
def desc(t):
    t = t.detach()
    return {"shape": list(t.shape), "dtype": str(t.dtype), "values": t.double().flatten().tolist(),
            "stride": list(t.stride()), "offset": t.storage_offset(), "contiguous": t.is_contiguous()}
expected = {
    "views": {k: desc(v) for k, v in views.items()},
    "nested": {k: desc(v) for k, v in lin.state_dict().items()},
    "sub": {"encoder.layer.w": desc(sub["encoder"]["layer"]["w"]), "heads.0": desc(sub["heads"][0]), "heads.1": desc(sub["heads"][1])},
}
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f)
`;

const TORCH_DTYPES: Record<string, string> = {
  'torch.float32': 'F32', 'torch.float16': 'F16', 'torch.bfloat16': 'BF16', 'torch.float64': 'F64', 'torch.int64': 'I64',
  'torch.int32': 'I32', 'torch.int16': 'I16', 'torch.int8': 'I8', 'torch.uint8': 'U8', 'torch.bool': 'BOOL',
};

interface Expected { shape: number[]; dtype: string; values: number[]; stride: number[]; offset: number; contiguous: boolean }

test('torch-written views, dtypes, shared storages and nested checkpoints decode to the values torch printed', async (t) => {
  const probe = fs.existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import torch'], { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } }) : undefined;
  if (!probe || probe.status !== 0) {
    t.skip(`${PYTHON} has no torch module (apt-get install python3-torch): skipping the torch-generated checkpoints`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(tmp, 'torch-'));
  const r = spawnSync(PYTHON, ['-c', TORCH_SCRIPT, dir], { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, Record<string, Expected>>;

  const check = async (c: Checkpoint, want: Record<string, Expected>) => {
    assert.deepEqual(c.tensors.map((x) => x.name).sort(), Object.keys(want).sort());
    for (const [name, e] of Object.entries(want)) {
      const entry = c.get(name)!;
      assert.deepEqual(entry.shape, e.shape, name);
      assert.equal(entry.dtype, TORCH_DTYPES[e.dtype], name);
      const got = await entry.read();
      // float32 holds every F16/BF16/I32/I16/I8 value exactly; F64 and big I64 round to the nearest float32.
      assert.deepEqual([...got], e.values.map((v) => Math.fround(v)), name);
      const raw = await entry.readRaw();
      assert.equal(raw.length, entry.params * DENSE_DTYPE_BYTES[entry.dtype], name);
    }
  };

  await withCheckpoint(path.join(dir, 'views.pt'), async (c) => {
    await check(c, expected.views);
    const v = expected.views;
    assert.equal(v.transposed.contiguous, false);
    assert.equal(v.offset_view.offset, 7);
    // base and transposed, offset_view and offset_row each share one storage.
    assert.equal(c.metadata.tensorsSharingStorage, 4);
    // byteOffset/byteLength cover the storage bytes a view touches.
    const off = c.get('offset_view')!;
    const row = c.get('offset_row')!;
    assert.equal(row.byteOffset - off.byteOffset, (33 - 7) * 4);
    assert.equal(off.byteLength, 20 * 4);
    const cols = c.get('every_other_col')!;
    assert.equal(cols.byteLength, (3 * 8 + 6 + 1) * 4); // from element 0 to element 3*8 + 3*2
    assert.equal(c.get('transposed')!.byteOffset, c.get('base')!.byteOffset);
    assert.equal(c.get('empty')!.byteLength, 0);
    assert.deepEqual(c.get('scalar')!.shape, []);
    // readRaw of a non-contiguous view is the gathered row-major bytes.
    const tr = new Float32Array((await c.get('transposed')!.readRaw()).slice().buffer);
    assert.deepEqual([...tr], v.transposed.values.map((x) => Math.fround(x)));
  });
  await withCheckpoint(path.join(dir, 'nested.pt'), async (c) => {
    await check(c, expected.nested);
    assert.equal(c.metadata.nestedUnder, 'state_dict');
    assert.deepEqual(c.metadata.ignoredKeys, ['optimizer']);
    assert.deepEqual(c.metadata.values, { epoch: 7, name: 'run-1' });
  });
  await withCheckpoint(path.join(dir, 'sub.pt'), async (c) => check(c, expected.sub));
  // A TorchScript archive holds code: its pickle names __torch__ classes, refused with a hint.
  await assert.rejects(openPytorch(path.join(dir, 'scripted.pt')), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /pickle asks for __torch__\.[\w.]+ at byte \d+ of scripted\/data\.pkl.*TorchScript archive/);
    return true;
  });
});

test('a view that reaches past its storage, or a storage larger than its entry, is refused naming the tensor', async () => {
  const pkl = (size: number[], stride: number[], offset: number, numel = 6) => new PickleWriter().proto(2).emptyDict()
    .str('w').tensor('FloatStorage', '0', numel, offset, size, stride).setitem().stop().build();
  const write = (name: string, bytes: Uint8Array) => { const p = path.join(tmp, name); fs.writeFileSync(p, bytes); return p; };
  const storage = { 0: f32bytes([1, 2, 3, 4, 5, 6]) };
  const ok = write('ok.pt', buildTorchZip('ok', pkl([3, 2], [1, 3], 0), storage));
  await withCheckpoint(ok, async (c) => assert.deepEqual([...(await c.get('w')!.read())], [1, 4, 2, 5, 3, 6]));
  await assert.rejects(openPytorch(write('past.pt', buildTorchZip('past', pkl([3, 2], [2, 1], 1), storage))), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /tensor w: view \(offset 1, size \[3, 2\], stride \[2, 1\]\) reaches element 6 of storage 0, which has 6 elements/);
    return true;
  });
  await assert.rejects(openPytorch(write('big.pt', buildTorchZip('big', pkl([2], [1], 0, 1000), storage))), /storage 0 \(F32 x 1,000 = 4,000 bytes\) is larger than its zip entry "big\/data\/0" \(24 bytes\)/);
  const missing = new PickleWriter().proto(2).emptyDict().str('w').tensor('FloatStorage', '7', 6, 0, [6], [1]).setitem().stop().build();
  await assert.rejects(openPytorch(write('missing.pt', buildTorchZip('missing', missing, storage))), /storage 7 has no zip entry "missing\/data\/7"/);
});

test('a deflated storage is inflated on read; a big-endian archive is decoded by its byteorder', async () => {
  const pkl = new PickleWriter().proto(2).emptyDict().str('w').tensor('FloatStorage', '0', 6, 0, [2, 3], [3, 1]).setitem().stop().build();
  const file = path.join(tmp, 'deflated.pt');
  fs.writeFileSync(file, buildTorchZip('deflated', pkl, { 0: f32bytes([1, -2, 3, -4, 5, -6]) }, { method: 8, zip64: true }));
  await withCheckpoint(file, async (c) => {
    assert.deepEqual([...(await c.get('w')!.read())], [1, -2, 3, -4, 5, -6]);
    assert.equal(c.metadata.compressedStorages, 1);
  });
  const be = new Uint8Array(24);
  const dv = new DataView(be.buffer);
  [1.5, -2, 3, 4, 5, 6.25].forEach((v, i) => dv.setFloat32(i * 4, v, false));
  const beFile = path.join(tmp, 'be.pt');
  fs.writeFileSync(beFile, buildZip([
    { name: 'be/data.pkl', data: pkl }, { name: 'be/byteorder', data: new TextEncoder().encode('big') }, { name: 'be/data/0', data: be },
  ]));
  await withCheckpoint(beFile, async (c) => {
    assert.equal(c.metadata.byteorder, 'big');
    assert.deepEqual([...(await c.get('w')!.read())], [1.5, -2, 3, 4, 5, 6.25]);
  });
});

test('a zip with .npy members and no data.pkl is delegated to the .npz reader', async () => {
  const npy = (values: number[]) => {
    const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${values.length},), }`;
    const padded = header.padEnd(64 - 10 - 1, ' ') + '\n';
    const h = new Uint8Array(10 + padded.length);
    h.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0], 0);
    new DataView(h.buffer).setUint16(8, padded.length, true);
    h.set(new TextEncoder().encode(padded), 10);
    const out = new Uint8Array(h.length + values.length * 4);
    out.set(h);
    out.set(f32bytes(values), h.length);
    return out;
  };
  const file = path.join(tmp, 'arrays.pt');
  fs.writeFileSync(file, buildZip([{ name: 'a.npy', data: npy([1, 2, 3]) }, { name: 'b.npy', data: npy([4]) }]));
  await withCheckpoint(file, async (c) => {
    assert.equal(c.format, 'npz');
    assert.deepEqual(c.tensors.map((t) => t.name), ['a', 'b']);
    assert.deepEqual([...(await c.get('a')!.read())], [1, 2, 3]);
  });
  const neither = path.join(tmp, 'neither.pt');
  fs.writeFileSync(neither, buildZip([{ name: 'readme.txt', data: new Uint8Array(3) }]));
  await assert.rejects(openPytorch(neither), /no <archive>\/data\.pkl .* and no \.npy entries/);
});

test('property: byte mutations and truncations of a real .pt give a checkpoint or a CheckpointError, nothing else', async () => {
  const original = fs.readFileSync(path.join(SHARED, 'fixtures/stories260k/stories260K.pt'));
  // Aim most mutations at the structure (pickle, local headers, central directory, EOCD): flipping
  // tensor bytes only changes numbers. Regions come from the archive itself.
  const regions: Array<[number, number]> = [];
  const fa = await (await import('../../../src/core/checkpoint/fileAccessor')).FileAccessor.open(path.join(SHARED, 'fixtures/stories260k/stories260K.pt'));
  const { ZipArchive } = await import('../../../src/core/checkpoint/zip');
  const zip = await ZipArchive.open(fa);
  const pklEntry = zip.get('stories260K/data.pkl')!;
  regions.push([await zip.dataOffset(pklEntry), pklEntry.uncompressedSize]);
  for (const e of zip.entries) regions.push([e.localHeaderOffset, 30 + e.name.length + 4]);
  regions.push([zip.centralDirectoryOffset, original.length - zip.centralDirectoryOffset]);
  await fa.close();

  const mutation = fc.record({
    kind: fc.constantFrom('flip', 'set', 'truncate'),
    region: fc.integer({ min: 0, max: regions.length - 1 }),
    where: fc.double({ min: 0, max: 1, noNaN: true }),
    value: fc.integer({ min: 0, max: 255 }),
  });
  const file = path.join(tmp, 'mutated.pt');
  let opened = 0;
  let refusedCount = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (muts) => {
      const bytes = Buffer.from(original);
      let length = bytes.length;
      for (const m of muts) {
        const [start, len] = m.kind === 'truncate' ? [0, bytes.length] : regions[m.region];
        const at = Math.min(start + Math.floor(m.where * len), bytes.length - 1);
        if (m.kind === 'truncate') length = Math.min(length, at);
        else if (m.kind === 'flip') bytes[at] ^= 1 << (m.value & 7);
        else bytes[at] = m.value;
      }
      fs.writeFileSync(file, bytes.subarray(0, length));
      try {
        const c = await open(file);
        try {
          for (const t of c.tensors) {
            const data = await t.read();
            assert.equal(data.length, t.params);
          }
        } finally {
          await c.close();
        }
        opened++;
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw new Error(`mutations ${JSON.stringify(muts)} gave ${String((e as Error)?.stack ?? e)}`);
        refusedCount++;
      }
    }),
    { numRuns: 150, seed: 424242 },
  );
  // Both outcomes must occur, or the property tested nothing.
  assert.ok(opened > 0 && refusedCount > 0, `opened ${opened}, refused ${refusedCount}`);
});
