import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { compressionTable } from '../../../src/core/evaluate/compressionTable';
import { PICO, picoValidationText } from './fixtures';

test('compression table on PicoGPT (MPO, 2 sites, chi 16/32/64/128, 1,500 held-out characters): monotone in chi, exact at full bond dimension', async () => {
  const r = await compressionTable(path.join(PICO, 'pico.safetensors'), { chis: [16, 32, 64, 128], text: picoValidationText().slice(0, 1500) });
  assert.equal(r.matrices.length, 16);
  assert.equal(r.denseModelParams, 818048);
  assert.equal(r.denseMatrixParams, 4 * (384 * 128 + 128 * 128 + 512 * 128 + 128 * 512));
  for (let k = 1; k < r.rows.length; k++) {
    const a = r.rows[k - 1], b = r.rows[k];
    assert.ok(b.matrixParams > a.matrixParams, 'more chi -> more parameters');
    assert.ok(b.relativeError < a.relativeError, 'more chi -> lower error');
    assert.ok(b.top1Agreement >= a.top1Agreement, `more chi -> better or equal agreement (${a.chi}: ${a.top1Agreement}, ${b.chi}: ${b.top1Agreement})`);
  }
  for (const x of r.rows) {
    assert.equal(x.modelParams, 818048 - r.denseMatrixParams + x.matrixParams);
    assert.ok(Math.abs(x.matrixRatio - r.denseMatrixParams / x.matrixParams) < 1e-12);
  }
  // chi 128 is the full rank of every 2-site cut of these matrices: the MPO is exact.
  const full = r.rows[r.rows.length - 1];
  assert.ok(full.relativeError < 1e-5, `chi 128 error ${full.relativeError}`);
  assert.equal(full.top1Agreement, 1);
  assert.ok(Math.abs(full.perplexity - r.dense.perplexity) < 1e-3 * r.dense.perplexity);
});
