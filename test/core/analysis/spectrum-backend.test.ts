// Exact-mode spectra of the fixture checkpoints through the real backends, against the numpy float64
// reference: singular values to 1e-5 relative to s_1, metrics to 1e-5 relative.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, copyFileSync, openSync, writeSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { open } from '../../../src/core/checkpoint';
import { getLinalgBackend } from '../../../src/core/linalg';
import { nativeAvailable } from '../../../src/core/linalg';
import { analyzeTensor, chooseMode } from '../../../src/core/analysis/analyze';

const SHARED = join(__dirname, '..', '..', '..', '..', 'shared');
interface RefTensor { name: string; shape: number[]; singularValues: number[]; [k: string]: unknown }
const ref = (m: string): RefTensor[] => JSON.parse(readFileSync(join(SHARED, 'reference', `${m}.spectra.json`), 'utf8')).tensors;
const CASES: Array<[string, string]> = [['pico', 'fixtures/pico/pico.safetensors'], ['stories260k', 'fixtures/stories260k/stories260K.safetensors']];

for (const pref of ['native', 'portable'] as const) {
  for (const [model, file] of CASES) {
    test(`${pref} backend: exact spectra of ${file} match the reference (s to 1e-5 of s_1, metrics to 1e-5)`, async (t) => {
      if (pref === 'native' && !(await nativeAvailable()).available) return t.skip('no native LAPACK on this machine');
      const backend = await getLinalgBackend(pref);
      const ckpt = await open(join(SHARED, file));
      try {
        for (const r of ref(model)) {
          const entry = ckpt.get(r.name);
          assert.ok(entry, `${r.name} in ${file}`);
          const res = await analyzeTensor(backend, entry, await entry.read(), { mode: 'exact' });
          assert.equal(res.mode, 'exact');
          assert.equal(res.backend, pref);
          const s = res.singularValues!;
          assert.equal(s.length, r.singularValues.length);
          const s1 = r.singularValues[0];
          for (let i = 0; i < s.length; i++) assert.ok(Math.abs(s[i] - r.singularValues[i]) <= 1e-5 * s1, `${r.name} s_${i}: ${s[i]} vs ${r.singularValues[i]}`);
          for (const key of ['vonNeumannEntropy', 'renyi2Entropy', 'stableRank', 'frobeniusNorm', 'spectralNorm'] as const) {
            const want = r[key] as number;
            assert.ok(Math.abs(res[key] - want) <= 1e-5 * Math.abs(want), `${r.name} ${key}: ${res[key]} vs ${want}`);
          }
          assert.equal(res.truncation.errors.length, s.length + 1);
          assert.ok(Math.abs(res.density.counts.reduce((a, b) => a + b, 0) - s.length) < 1e-9);
          assert.doesNotThrow(() => JSON.stringify(res));
        }
      } finally {
        await ckpt.close();
        await backend.dispose();
      }
    });
  }
}

test('a tensor with NaN values is reported by name and element, not analysed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-spectrum-'));
  try {
    const copy = join(dir, 'pico-nan.safetensors');
    copyFileSync(join(SHARED, 'fixtures/pico/pico.safetensors'), copy);
    const ckpt0 = await open(copy);
    const target = ckpt0.get('h.1.attn.c_proj.weight')!;
    await ckpt0.close();
    const fd = openSync(copy, 'r+');
    writeSync(fd, Buffer.from([0x00, 0x00, 0xc0, 0x7f]), 0, 4, target.byteOffset + 4 * 130); // float32 NaN at element 130
    closeSync(fd);
    const ckpt = await open(copy);
    const backend = await getLinalgBackend('auto');
    try {
      const e = ckpt.get('h.1.attn.c_proj.weight')!;
      await assert.rejects(analyzeTensor(backend, e, await e.read()), /h\.1\.attn\.c_proj\.weight: 1 non-finite value.*element 130 \(row 1, column 2\)/);
    } finally {
      await ckpt.close();
      await backend.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("mode 'auto': exact up to the documented rank threshold, estimate above", () => {
  assert.equal(chooseMode('auto', { rows: 4096, cols: 2048 }, { name: 'native' }), 'exact');
  assert.equal(chooseMode('auto', { rows: 4096, cols: 2049 }, { name: 'native' }), 'estimate');
  assert.equal(chooseMode('auto', { rows: 4096, cols: 1025 }, { name: 'portable' }), 'estimate');
  assert.equal(chooseMode('exact', { rows: 8192, cols: 8192 }, { name: 'portable' }), 'exact');
});
