import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tourCommand, sampleModelPath, tensorKind } from '../../src/cli/commands/tour';
import { UsageError } from '../../src/cli/args';
import { open } from '../../src/core/checkpoint/open';
import { summarize } from '../../src/core/checkpoint/base';
import { int, fixed } from '../../src/report/html';
import type { TourResult } from '../../src/report/types';
import { parseXml } from '../report/xml';
import { capture } from './surgeryCliUtil';

const SHARED = path.resolve(__dirname, '../../../shared');
const REFERENCE = path.join(SHARED, 'reference/stories260k.spectra.json');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensor-scalpel-tour-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** GGUF (llama.cpp) names -> the Hugging Face names of the reference file (same weights, stories260k/README). */
function hfName(gguf: string): string {
  const { kind, depth } = tensorKind(gguf);
  if (depth === null) return kind === 'token_embd' ? 'model.embed_tokens.weight' : kind === 'output' ? 'lm_head.weight' : gguf;
  const map: Record<string, string> = {
    attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
    ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
  };
  return `model.layers.${depth}.${map[kind]}.weight`;
}

test('tensorKind strips the block prefix and the weight suffix', () => {
  assert.deepEqual(tensorKind('blk.3.attn_q.weight'), { kind: 'attn_q', depth: 3 });
  assert.deepEqual(tensorKind('model.layers.12.mlp.down_proj.weight'), { kind: 'mlp.down_proj', depth: 12 });
  assert.deepEqual(tensorKind('transformer.h.0.attn.c_attn.weight'), { kind: 'attn.c_attn', depth: 0 });
  assert.deepEqual(tensorKind('token_embd.weight'), { kind: 'token_embd', depth: null });
});

test('tour on the bundled sample: exit 0, report and compressed model written, numbers consistent', async () => {
  const model = sampleModelPath();
  assert.ok(fs.existsSync(model), `the bundled sample resolves from source: ${model}`);
  const outDir = path.join(tmp, 'json');
  const c = capture();
  const code = await tourCommand.run(['--out', outDir, '--json'], c.io);
  assert.equal(code, 0, c.err.join('\n'));
  const r = JSON.parse(c.out.join('\n')) as TourResult;
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(outDir, 'tour.json'), 'utf8')), r, 'tour.json equals the printed JSON');
  assert.ok(c.err.some((l) => l.startsWith('tour: 6/6')), 'progress goes to stderr');

  // 1. The model: the parameter count is summarize()'s.
  const ckpt = await open(model);
  const sum = summarize(ckpt);
  await ckpt.close();
  assert.equal(r.model.totalParams, sum.totalParams);
  assert.equal(r.model.tensors, 48);
  assert.equal(r.model.matrices, 37);

  // 2. Spectra: every matrix, checked against the LAPACK float64 reference by name.
  const ref = JSON.parse(fs.readFileSync(REFERENCE, 'utf8')) as { tensors: Array<{ name: string; singularValues: number[] }> };
  const refByName = new Map(ref.tensors.map((t) => [t.name, t.singularValues]));
  assert.equal(r.spectra.tensors.length, 37);
  for (const rep of r.spectra.representatives) {
    const s = refByName.get(hfName(rep.name));
    assert.ok(s, `reference for ${rep.name}`);
    assert.equal(rep.singularValues.length, s.length);
    for (let i = 0; i < s.length; i++) assert.ok(Math.abs(rep.singularValues[i] - s[i]) <= 1e-4 * s[0], `${rep.name} s_${i + 1}: ${rep.singularValues[i]} vs ${s[i]}`);
  }
  for (const k of r.spectra.byKind) {
    const of = r.spectra.tensors.filter((t) => t.kind === k.kind);
    assert.equal(k.count, of.length);
    assert.equal(k.outliers, of.reduce((a, t) => a + t.outliers, 0));
  }
  assert.equal(r.spectra.topOutliers.length, 5);
  const maxOutliers = Math.max(...r.spectra.tensors.map((t) => t.outliers));
  assert.equal(r.spectra.topOutliers[0].outliers, maxOutliers);
  // Bond profile: entropy never above ln min(L, R).
  for (const b of r.bondProfile.bonds) {
    assert.ok(Math.abs(b.maxEntropy - Math.log(Math.min(b.leftDim, b.rightDim))) < 1e-12);
    assert.ok(b.entropy !== null && b.entropy <= b.maxEntropy + 1e-9);
  }

  // 3. Compression: ratio = params after / before; the file reopens with open() and holds every tensor densely.
  const cm = r.compression;
  assert.equal(cm.chi, 8);
  assert.ok(Math.abs(cm.ratio - cm.totalParams / cm.originalParams) < 1e-12);
  assert.equal(cm.originalParams - cm.totalParams, cm.compressedDenseParams - cm.compressedParams);
  assert.equal(cm.tensors.length, 35, 'the 35 block matrices');
  for (const t of cm.tensors) assert.ok(t.bondDimensions.every((d) => d <= 8));
  assert.ok(fs.existsSync(cm.out) && path.dirname(cm.out) === outDir);
  const reopened = await open(cm.out);
  assert.equal(reopened.tensors.length, 48);
  assert.equal(summarize(reopened).totalParams, sum.totalParams, 'written dense: same shapes');
  await reopened.close();

  // 4. Evaluation of the written file agrees with the in-memory chi sweep at the same chi (two routes).
  const row = r.chiSweep.rows.find((x) => x.chi === 8)!;
  assert.ok(Math.abs(row.klDivergence - r.evaluation.klDivergence!) <= 1e-3 * row.klDivergence, `KL ${row.klDivergence} vs ${r.evaluation.klDivergence}`);
  assert.ok(Math.abs(row.top1Agreement - r.evaluation.top1Agreement!) <= 0.01);
  assert.ok(Math.abs(r.evaluation.originalPerplexity - r.chiSweep.dense.perplexity) < 1e-6 * r.chiSweep.dense.perplexity);
  assert.ok(r.evaluation.samples.length >= 1 && r.evaluation.samples[0].prompt === '', 'a sample from BOS');
  assert.match(r.evaluation.samples[0].against!, /^\s*Once upon a time/);

  // 5. Scalpel: the full spectra match the summaries, the virus is the outlier, removing the top
  // direction restores top-1 agreement to >= 99% while the infected model's is far lower, and the text.
  const d = r.scalpel;
  assert.ok(Math.abs(d.fullSpectra.virus[0] - d.spectra.virus.s1) < 1e-9 * d.spectra.virus.s1);
  assert.ok(d.agreement.repaired >= 0.99, `repaired agreement ${d.agreement.repaired}`);
  assert.ok(d.agreement.virus < 0.9, `infected agreement ${d.agreement.virus}`);
  assert.notEqual(d.generation.virus, d.generation.original, 'the virus changes greedy generation');
  assert.ok(d.spectra.virus.s1 > 2 * d.spectra.virus.s2 && d.spectra.virus.s1 > d.spectra.virus.mpEdge);
  const refDown = refByName.get('model.layers.2.mlp.down_proj.weight')!;
  assert.ok(Math.abs(d.fullSpectra.original[0] - refDown[0]) < 1e-4 * refDown[0]);
  assert.equal(d.generation.repairedEqualsOriginal, d.generation.repaired === d.generation.original);

  // 6. The report: sections, numbers from the JSON, well-formed SVG charts, nothing external.
  const html = fs.readFileSync(r.reportPath, 'utf8');
  assert.equal(r.reportPath, path.join(outDir, 'index.html'));
  for (const id of ['model', 'spectra', 'model-map', 'compression', 'evaluation', 'scalpel']) assert.ok(html.includes(`id="${id}"`), `section ${id}`);
  assert.ok(html.includes(int(sum.totalParams)), 'parameter count');
  assert.ok(html.includes(int(cm.totalParams)) && html.includes(fixed(cm.ratio, 4)), 'compression numbers');
  assert.ok(html.includes(fixed(r.evaluation.perplexity, 3)) && html.includes(fixed(d.spectra.virus.s1)), 'evaluation and scalpel numbers');
  assert.ok(!/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/.test(html), 'no scripts, no network');
  const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
  assert.ok(svgs.length >= 8, `${svgs.length} charts`);
  for (const svg of svgs) {
    const els = parseXml(svg);
    assert.equal(els[0].attrs.role, 'img');
    assert.ok(els[0].attrs['aria-label'].length > 0);
  }
  // The model map: one cell per (kind, depth) of the block matrices.
  const map = parseXml(svgs.find((s) => s.includes('Model map'))!);
  const cells = map.filter((e) => e.name === 'rect' && e.attrs.class?.split(' ').includes('cell'));
  const blocks = r.spectra.tensors.filter((t) => t.depth !== null);
  const kinds = new Set(blocks.map((t) => t.kind)), depths = new Set(blocks.map((t) => t.depth));
  assert.equal(cells.length, kinds.size * depths.size);
  for (const t of blocks) {
    const cell = cells.find((e) => Number(e.attrs['data-value']) === t.normalizedEntropy);
    assert.ok(cell, `a cell for ${t.name}`);
  }
});

test('tour text mode at another chi: the summary on stdout ends with the report path', async () => {
  const outDir = path.join(tmp, 'text');
  const c = capture();
  assert.equal(await tourCommand.run(['--out', outDir, '--chi', '64'], c.io), 0, c.err.join('\n'));
  const text = c.out.join('\n');
  for (const h of ['== 1. model', '== 2. spectra', '== 3. MPO compression, chi 64', '== 4. compressed vs original', '== 5. virus and scalpel']) assert.ok(text.includes(h), h);
  assert.ok(text.includes(`report: ${path.join(outDir, 'index.html')}`));
  assert.ok(fs.existsSync(path.join(outDir, 'stories260K.mpo-chi64.gguf')));
  const r = JSON.parse(fs.readFileSync(path.join(outDir, 'tour.json'), 'utf8')) as TourResult;
  // More bond dimension, less error: chi 64 keeps more of the model than chi 8 does.
  assert.ok(r.compression.meanRelativeError < 0.5 && r.evaluation.top1Agreement! > 0.5, `${r.compression.meanRelativeError} ${r.evaluation.top1Agreement}`);
});

test('tour: usage errors', async () => {
  await assert.rejects(tourCommand.run(['model.gguf'], capture().io), UsageError);
  await assert.rejects(tourCommand.run(['--chi', '0', '--out', path.join(tmp, 'x')], capture().io), UsageError);
  await assert.rejects(tourCommand.run(['--model', path.join(tmp, 'missing.gguf'), '--out', path.join(tmp, 'y')], capture().io), UsageError);
});
