import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { open } from '../../src/core/checkpoint/open';
import { getLinalgBackend } from '../../src/core/linalg';
import { decomposeMpo, mpoReport } from '../../src/core/analysis/mpo';
import { chiTable, exactBondSpectra } from '../../src/extension/chiTable';
import { npyFloat32Bytes } from '../../src/extension/npy';
import { loadDirection } from '../../src/core/surgery';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const PICO = join(__dirname, '../../../shared/fixtures/pico/pico.safetensors');

test('chi table of a real 2-site MPO: error(chi) equals the truncated TT-SVD error, params its core sizes', async () => {
  const backend = await getLinalgBackend('portable');
  const ckpt = await open(PICO);
  try {
    const e = ckpt.get('h.1.attn.c_proj.weight')!;
    const [rows, cols] = e.shape;
    const w = await e.read();
    const full = mpoReport(await decomposeMpo(w, rows, cols, { backend, sites: 2, spectra: 'exact' }));
    const fast = await exactBondSpectra(w, rows, cols, full.outFactors, full.inFactors, backend);
    // The reshape route gives the same bond spectrum as the TT-SVD's exact spectra.
    assert.equal(fast.bondSpectra[0].length, full.bondSpectra[0].length);
    for (let j = 0; j < 5; j++) assert.ok(Math.abs(fast.bondSpectra[0][j] - full.bondSpectra[0][j]) < 1e-4 * full.bondSpectra[0][0]);
    assert.ok(Math.abs(fast.bondEntropies[0] - full.bondEntropies[0]!) < 1e-4);
    const t = chiTable(fast);
    assert.equal(t.params.length, Math.min(full.outFactors[0] * full.inFactors[0], full.outFactors[1] * full.inFactors[1]));
    for (let i = 1; i < t.errors.length; i++) {
      assert.ok(t.errors[i] <= t.errors[i - 1] + 1e-15, 'errors fall with chi');
      assert.ok(t.params[i] > t.params[i - 1], 'params grow with chi');
    }
    assert.ok(t.errors[t.errors.length - 1] < 1e-12, 'full chi is exact');
    for (const chi of [1, 4, 16]) {
      const trunc = await decomposeMpo(w, rows, cols, { backend, sites: 2, truncation: { chi } });
      assert.equal(t.params[chi - 1], trunc.params, `params at chi ${chi}`);
      // The sweep's own error is measured independently of the spectra; float32 cores: tolerance 1e-4.
      assert.ok(Math.abs(t.errors[chi - 1] - trunc.relativeError) < 1e-4, `chi ${chi}: table ${t.errors[chi - 1]} vs TT-SVD ${trunc.relativeError}`);
    }
  } finally {
    await ckpt.close();
    await backend.dispose();
  }
});

test('chi table with 3 sites: the error column bounds the truncated TT-SVD error from above (Oseledets Thm 2.2)', async () => {
  const backend = await getLinalgBackend('portable');
  const ckpt = await open(PICO);
  try {
    const e = ckpt.get('h.2.mlp.c_fc.weight')!;
    const [rows, cols] = e.shape;
    const w = await e.read();
    const outF = [8, 8, 8], inF = [4, 4, 8];
    const t = chiTable(await exactBondSpectra(w, rows, cols, outF, inF, backend));
    for (const chi of [2, 8, 32]) {
      const trunc = await decomposeMpo(w, rows, cols, { backend, outFactors: outF, inFactors: inF, truncation: { chi } });
      assert.equal(t.params[chi - 1], trunc.params);
      assert.ok(trunc.relativeError <= t.errors[chi - 1] + 1e-4, `chi ${chi}: TT-SVD ${trunc.relativeError} > bound ${t.errors[chi - 1]}`);
    }
  } finally {
    await ckpt.close();
    await backend.dispose();
  }
});

test('a .npy written for a singular direction reads back through the surgery loader', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-npy-'));
  try {
    const v = Float32Array.from({ length: 131 }, (_, i) => Math.sin(i));
    const f = join(dir, 'v.npy');
    writeFileSync(f, npyFloat32Bytes(v));
    const d = await loadDirection(f);
    assert.equal(d.r.length, 131);
    const n = Math.hypot(...v);
    assert.ok(Math.abs(d.norm - n) < 1e-5);
    for (let i = 0; i < v.length; i++) assert.ok(Math.abs(d.r[i] - v[i] / n) < 1e-6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
