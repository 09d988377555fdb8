import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { mpoCommand } from '../../src/cli/commands/mpo';
import { UsageError, type CliIO } from '../../src/cli/args';
import { bondDimensionsForChi, mpoParamCount, spectrumEntropies } from '../../src/core/analysis/mpo';

const SHARED = path.resolve(__dirname, '../../../shared');
const PICO = path.join(SHARED, 'fixtures/pico/pico.safetensors');
const STORIES = path.join(SHARED, 'fixtures/real/stories260K.gguf');

function capture(): { io: CliIO; out: string[]; err: string[] } {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t), progress: (t) => err.push(t), signal: new AbortController().signal }, out, err };
}

async function runJson(argv: string[]) {
  const c = capture();
  const code = await mpoCommand.run([...argv, '--json'], c.io);
  assert.equal(code, 0);
  assert.equal(c.out.length, 1, 'stdout is one JSON document');
  return JSON.parse(c.out[0]);
}

test('mpo --json on PicoGPT c_proj: the documented keys, exact parameter count, consistent entropies', async () => {
  const r = await runJson([PICO, '--tensor', 'h.1.attn.c_proj.weight', '--out-factors', '8,16', '--in-factors', '8,16', '--chi', '8']);
  for (const k of ['name', 'shape', 'outFactors', 'inFactors', 'bondDimensions', 'bondEntropies', 'bondSpectra', 'params', 'denseParams', 'relativeError', 'maxBondEntropies', 'discardedWeights']) {
    assert.ok(k in r, `missing ${k}`);
  }
  assert.equal(r.name, 'h.1.attn.c_proj.weight');
  assert.deepEqual(r.shape, [128, 128]);
  assert.deepEqual(r.bondDimensions, [8]);
  assert.equal(r.params, 2560);
  assert.equal(r.denseParams, 16384);
  assert.equal(r.padding, undefined);
  assert.equal(r.bondSpectra[0].length, 64, 'the 64 x 256 cut has 64 Schmidt values');
  assert.ok(Math.abs(spectrumEntropies(r.bondSpectra[0]).entropy - r.bondEntropies[0]) < 1e-12);
  assert.ok(Math.abs(r.maxBondEntropies[0] - Math.log(64)) < 1e-12);
  // ||W||_F from the bond spectrum equals the LAPACK reference norm of this tensor.
  const ref = JSON.parse(await readFile(path.join(SHARED, 'reference/pico.spectra.json'), 'utf8')).tensors.find((t: { name: string }) => t.name === r.name);
  const norm = Math.sqrt(r.bondSpectra[0].reduce((a: number, s: number) => a + s * s, 0));
  assert.ok(Math.abs(norm - ref.frobeniusNorm) < 1e-5 * ref.frobeniusNorm);
  // relativeError is sqrt(discarded)/||W|| and the discarded weight is the tail of the spectrum beyond chi.
  const tail = r.bondSpectra[0].slice(8).reduce((a: number, s: number) => a + s * s, 0);
  assert.ok(Math.abs(r.discardedWeights[0] - tail) < 1e-4 * tail);
  assert.ok(Math.abs(r.relativeError - Math.sqrt(tail) / ref.frobeniusNorm) < 1e-5);
  // Plain low-rank baseline at the same budget: rank floor(2560 / 256) = 10.
  assert.equal(r.lowRankAtSameParams.rank, 10);
});

test('mpo --json: automatic sites, error target, head with [5,13] factors, padded stories260K FFN', async () => {
  const fc = await runJson([PICO, '--tensor', 'h.0.mlp.c_fc.weight', '--sites', '3', '--error', '0.5']);
  assert.deepEqual(fc.shape, [512, 128]);
  assert.deepEqual(fc.outFactors, [8, 8, 8]);
  assert.deepEqual(fc.inFactors, [4, 4, 8]);
  assert.ok(fc.relativeError <= 0.5);
  assert.equal(fc.params, mpoParamCount(fc.outFactors, fc.inFactors, fc.bondDimensions));

  const head = await runJson([PICO, '--tensor', 'wte.weight', '--out-factors', '5,13', '--in-factors', '8,16', '--chi', '8']);
  assert.equal(head.params, 1984);
  assert.equal(head.params, mpoParamCount([5, 13], [8, 16], bondDimensionsForChi([5, 13], [8, 16], 8)));

  // 172 = 4 * 43 cannot be split evenly: the FFN is zero-padded, and the padding is reported.
  const ffn = await runJson([STORIES, '--tensor', 'blk.0.ffn_up.weight', '--sites', '2']);
  assert.deepEqual(ffn.shape, [172, 64]);
  assert.ok(ffn.padding && ffn.padding.rows > 0, JSON.stringify(ffn.padding));
  assert.equal(ffn.outFactors.reduce((a: number, b: number) => a * b, 1), 172 + ffn.padding.rows);
  assert.ok(ffn.relativeError < 1e-6, 'no truncation: exact');
  assert.equal(ffn.sitePlan.strategy, 'pad');
});

test('mpo table output and usage errors', async () => {
  const c = capture();
  assert.equal(await mpoCommand.run([PICO, '--tensor', 'h.2.attn.c_proj.weight', '--sites', '3', '--chi', '4'], c.io), 0);
  const text = c.out.join('\n');
  assert.match(text, /h\.2\.attn\.c_proj\.weight \[128, 128\] as an MPO of 3 sites/);
  assert.match(text, /out factors 4 x 4 x 8, in factors 4 x 4 x 8/);
  assert.match(text, /bond\s+cut \(L x R\)\s+chi/);
  assert.equal(text.split('\n').filter((l) => /^\s+[12]\s+\d+ x \d+/.test(l)).length, 2, text);

  await assert.rejects(mpoCommand.run([PICO, '--tensor', 'h.0.attn.c_proj.weight', '--out-factors', '8,17', '--in-factors', '8,16'], capture().io),
    (e: Error) => e instanceof UsageError && /out-factors 8,17 multiply to 136 but the tensor has 128 rows/.test(e.message));
  await assert.rejects(mpoCommand.run([PICO, '--tensor', 'nope'], capture().io), UsageError);
  await assert.rejects(mpoCommand.run([PICO, '--tensor', 'h.0.ln_1.weight'], capture().io), /needs a matrix/);
  await assert.rejects(mpoCommand.run([PICO, '--tensor', 'wpe.weight', '--sites', '2', '--out-factors', '8,16', '--in-factors', '8,16'], capture().io), UsageError);
  await assert.rejects(mpoCommand.run([PICO, '--tensor', 'wpe.weight', '--chi', '0'], capture().io), UsageError);
  // One chi per bond: 3 sites have 2 bonds.
  const perBond = await runJson([PICO, '--tensor', 'wpe.weight', '--sites', '3', '--chi', '3,5']);
  assert.deepEqual(perBond.bondDimensions, [3, 5]);
  await assert.rejects(mpoCommand.run([PICO, '--tensor', 'wpe.weight', '--sites', '3', '--chi', '3,5,7'], capture().io),
    (e: Error) => e instanceof UsageError && /chi has 3 entries but 3 sites have 2 bonds/.test(e.message));
});
