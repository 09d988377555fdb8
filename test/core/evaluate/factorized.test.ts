import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { open } from '../../../src/core/checkpoint';
import { parseFactorizationMetadata } from '../../../src/core/checkpoint/safetensorsWriter';
import { mpoContractionMacs } from '../../../src/core/checkpoint/onnxWriter';
import { getLinalgBackend } from '../../../src/core/linalg';
import { applyRecipe } from '../../../src/core/surgery/apply';
import { loadModel, requireTokenizer } from '../../../src/core/evaluate';
import { PICO } from './fixtures';

const PICO_ST = path.join(PICO, 'pico.safetensors');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * For each factorization (low-rank rank 16, MPO chi 4 and chi 16, 2 sites) surgery writes the same
 * compression twice: dense (the reconstructed matrices) and factorized (the factors + metadata).
 * The factorized file must run WITH its factors (fewer MACs, counted) and give the dense file's logits.
 */
for (const [label, compress, fewer] of [
  ['low-rank rank 16', { method: 'svd' as const, rank: 16 }, true],
  ['MPO chi 4', { method: 'mpo' as const, chi: 4 }, true],
  // Few parameters need not mean few MACs: at chi 16 over 3 sites the chain costs ~8x the dense product.
  ['MPO chi 16 (3 sites)', { method: 'mpo' as const, chi: 16, sites: 3 }, false],
] as const) {
  test(`factorized graph, ${label}: logits = the dense reconstruction's within 1e-4, MAC count = the formula, ${fewer ? 'fewer' : 'more'} MACs than dense`, async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-fact-'));
    const be = await getLinalgBackend('auto');
    try {
      const dense = path.join(dir, 'dense.safetensors'), fact = path.join(dir, 'fact.safetensors');
      await applyRecipe({ version: 1, input: PICO_ST, output: { path: dense }, compress: [compress] }, { backend: be, sidecar: false });
      await applyRecipe({ version: 1, input: PICO_ST, output: { path: fact, factorized: true }, compress: [compress] }, { backend: be, sidecar: false });
      const mD = await loadModel(dense), mF = await loadModel(fact), mX = await loadModel(fact, { densify: true }), mO = await loadModel(PICO_ST);
      const f = await open(fact);
      try {
        const table = parseFactorizationMetadata(f.metadata, fact);
        assert.equal(table.size, 16);
        assert.equal(mF.graphStats!.factorizedLinears, 16, 'every factorized matrix is computed with its factors');
        assert.equal(mX.graphStats!.factorizedLinears, 0);
        // Independent MAC count: dense products of the original model minus the 16 matrices' rows x cols plus their factor costs.
        let expected = mO.graphStats!.linearMacsPerToken;
        for (const fz of table.values()) {
          expected -= fz.shape[0] * fz.shape[1];
          // pico.safetensors is Linear [out, in]: y = x W^T contracts W's columns.
          expected += fz.kind === 'lowrank' ? fz.rank * (fz.shape[0] + fz.shape[1]) : mpoContractionMacs(fz.outFactors, fz.inFactors, fz.bondDims, 'cols', 'left-to-right');
        }
        assert.equal(mF.graphStats!.linearMacsPerToken, expected);
        assert.equal(mD.graphStats!.linearMacsPerToken, mO.graphStats!.linearMacsPerToken);
        assert.equal(mF.graphStats!.linearMacsPerToken < mD.graphStats!.linearMacsPerToken, fewer, `MACs/token factorized ${mF.graphStats!.linearMacsPerToken} vs dense ${mD.graphStats!.linearMacsPerToken}`);
        assert.ok(mF.graphStats!.linearParams < mD.graphStats!.linearParams);
        assert.ok(mF.graphBytes! < mD.graphBytes!, 'the graph holds the factors, not the dense matrices');
        const ids = requireTokenizer(mO).encode('MENENIUS:\nWhat work\'s, my countrymen, in hand? where go you');
        const lD = await mD.logits(ids), lF = await mF.logits(ids), lX = await mX.logits(ids);
        assert.ok(maxAbsDiff(lF, lD) < 1e-4, `factors vs dense file: ${maxAbsDiff(lF, lD)}`);
        assert.ok(maxAbsDiff(lX, lD) < 1e-4, `densified vs dense file: ${maxAbsDiff(lX, lD)}`);
        assert.ok(maxAbsDiff(lF, await mO.logits(ids)) > 1e-3, 'the compression changed the model (the comparison is not vacuous)');
      } finally {
        await f.close();
        for (const m of [mD, mF, mX, mO]) await m.close();
      }
    } finally { await fsp.rm(dir, { recursive: true, force: true }); }
  });
}
