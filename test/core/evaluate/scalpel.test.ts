import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runScalpelDemo } from '../../../src/core/evaluate/scalpelDemo';
import { STORIES_GGUF } from './fixtures';

test('scalpel demo on stories260K blk.2.ffn_down: the virus changes generation, stands out in the spectrum, and removing s_1 u_1 v_1^T restores >= 99% top-1 agreement', async () => {
  // The virus hides in the 4 weakest singular directions of W (avoidTop 60 of rank 64), s = 3 s_1(W).
  const r = await runScalpelDemo(STORIES_GGUF, { tensor: 'blk.2.ffn_down.weight', relativeStrength: 3, avoidTop: 60, generateTokens: 30 });
  assert.deepEqual(r.shape, [64, 172]);
  assert.ok(Math.abs(r.strength - 3 * r.spectra.original.s1) < 1e-9 * r.strength);
  // Spectrum: the virus is the top singular value (Weyl: |s_1(W') - s| <= s_1(W)), far above s_2 and above the MP edge.
  assert.ok(Math.abs(r.spectra.virus.s1 - r.strength) <= r.spectra.original.s1);
  assert.ok(r.spectra.virus.gap > 2.5, `s_1/s_2 = ${r.spectra.virus.gap}`);
  assert.ok(r.spectra.virus.s1 > 2 * r.spectra.virus.mpEdge, `s_1 ${r.spectra.virus.s1} vs MP edge ${r.spectra.virus.mpEdge}`);
  assert.ok(Math.abs(r.removedSingularValue - r.spectra.virus.s1) < 1e-4 * r.removedSingularValue);
  // Behaviour: the virus changes greedy text and agreement; the repair restores it.
  assert.equal(r.generation.virusChanged, true);
  assert.equal(r.generation.repairedEqualsOriginal, true);
  assert.ok(r.agreement.virus < 0.9, `virus agreement ${r.agreement.virus}`);
  assert.ok(r.agreement.repaired >= 0.99, `repaired agreement ${r.agreement.repaired}`);
  assert.ok(r.kl.repaired < r.kl.virus / 10);
  assert.ok(r.spectra.repaired.s1 < 1.01 * r.spectra.original.s1, 'after the cut the top singular value is the original one again');
});

test('scalpel demo with a plain random virus: repair helps a lot but costs ~sqrt(1/m + 1/n) of W (documented collateral damage)', async () => {
  const r = await runScalpelDemo(STORIES_GGUF, { tensor: 'blk.2.ffn_down.weight', relativeStrength: 3, generateTokens: 10 });
  assert.equal(r.avoidTop, 0);
  assert.ok(r.agreement.repaired > r.agreement.virus + 0.1, JSON.stringify(r.agreement));
  const predicted = Math.sqrt(1 / 64 + 1 / 172);
  assert.ok(r.repairRelativeError > 0.5 * predicted && r.repairRelativeError < 2 * predicted, `repair error ${r.repairRelativeError} vs ~${predicted}`);
});
