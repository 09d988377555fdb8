import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { open } from '../../core/checkpoint/open';
import { summarize } from '../../core/checkpoint/base';
import { CheckpointError } from '../../core/checkpoint/errors';
import { tempPathFor } from '../../core/checkpoint/atomicWrite';
import { scanSpectra } from '../../core/jobs/scan';
import type { TensorSpectrum } from '../../core/analysis/analyze';
import { decomposeMpo } from '../../core/analysis/mpo';
import { getLinalgBackend } from '../../core/linalg';
import type { LinalgBackend } from '../../core/linalg/types';
import { applyRecipe } from '../../core/surgery/apply';
import { validateRecipe, type Recipe } from '../../core/surgery/recipe';
import { loadModel } from '../../core/evaluate/model';
import { evaluateModel } from '../../core/evaluate/evaluate';
import { runScalpelDemo } from '../../core/evaluate/scalpelDemo';
import { compressionTable } from '../../core/evaluate/compressionTable';
import { renderTourReport, qualityNote, int, fixed, sci } from '../../report/html';
import type { TourBondProfile, TourChiSweep, TourCompression, TourEvaluation, TourKindSummary, TourModel, TourRepresentative, TourResult, TourScalpel, TourSpectra, TourTensorSpectrum } from '../../report/types';
import { numberOpt, parse, table, UsageError, type CliCommand, type CliIO } from '../args';

const USAGE = 'tensor-scalpel tour [--model FILE] [--chi N] [--out DIR] [--json]';
const SAMPLE = 'stories260K.gguf';

/**
 * The bundled sample model: media/sample next to the CLI bundle (out/cli.js -> ../media/sample), or
 * the repository's when run from source under tsx (src/cli/commands -> ../../../media/sample).
 */
export function sampleModelPath(): string {
  const here = typeof __dirname !== 'undefined' ? __dirname : process.cwd();
  const candidates = [
    nodePath.resolve(here, '..', 'media', 'sample', SAMPLE),
    nodePath.resolve(here, '..', '..', '..', 'media', 'sample', SAMPLE),
    nodePath.resolve(process.cwd(), 'media', 'sample', SAMPLE),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

/**
 * A tensor's kind: its name without the block prefix and the `.weight` suffix, so that the same
 * matrix in every block lines up (blk.3.attn_q.weight -> attn_q, model.layers.3.mlp.down_proj.weight
 * -> mlp.down_proj, token_embd.weight -> token_embd).
 */
export function tensorKind(name: string): { kind: string; depth: number | null } {
  const m = /^(.*?(?:^|[./_:])(?:h|layers?|blk|blocks?|block)[._/](\d+))[._/](.+)$/i.exec(name);
  const strip = (s: string) => s.replace(/[._](weight|bias)$/, '');
  if (m) return { kind: strip(m[3]), depth: Number(m[2]) };
  return { kind: strip(name), depth: null };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Architecture facts worth a line in the report: general.* names and the architecture's own numbers. */
function modelFacts(metadata: Record<string, unknown>): TourModel['facts'] {
  const arch = typeof metadata['general.architecture'] === 'string' ? metadata['general.architecture'] as string : undefined;
  const facts: TourModel['facts'] = [];
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string' && typeof v !== 'number') continue;
    if (k === 'general.architecture' || k === 'general.name' || (arch && k.startsWith(`${arch}.`) && !k.includes('rope.dimension'))) {
      facts.push({ key: k, value: typeof v === 'number' ? (Number.isInteger(v) ? int(v) : String(Number(v.toPrecision(6)))) : v });
    }
  }
  return facts.slice(0, 14);
}

function spectraSummary(tensors: TensorSpectrum[], backend: string, seconds: number, failures: TourSpectra['failures']): TourSpectra {
  const rows: TourTensorSpectrum[] = tensors.map((t) => ({
    name: t.name, ...tensorKind(t.name), shape: t.matrix,
    normalizedEntropy: t.normalizedEntropy, vonNeumannEntropy: t.vonNeumannEntropy, effectiveRank: t.effectiveRank, stableRank: t.stableRank,
    spectralNorm: t.spectralNorm, mpEdge: t.mpEdge, outliers: t.outliers, alpha: t.alpha,
  }));
  const kinds: string[] = [];
  for (const r of rows) if (!kinds.includes(r.kind)) kinds.push(r.kind);
  const byKind: TourKindSummary[] = kinds.map((kind) => {
    const of = rows.filter((r) => r.kind === kind);
    const ne = of.map((r) => r.normalizedEntropy).filter((x): x is number => x !== null);
    return { kind, count: of.length, meanNormalizedEntropy: ne.length ? mean(ne) : null, meanEffectiveRank: mean(of.map((r) => r.effectiveRank)), outliers: of.reduce((a, r) => a + r.outliers, 0) };
  });
  const topOutliers = [...rows].sort((a, b) => b.outliers - a.outliers || b.spectralNorm / b.mpEdge - a.spectralNorm / a.mpEdge).slice(0, 5)
    .map((r) => ({ name: r.name, outliers: r.outliers, spectralNorm: r.spectralNorm, mpEdge: r.mpEdge }));
  // Representatives: the most structured, the most noise-like and the one with most outliers (distinct tensors).
  const withS = tensors.filter((t) => t.singularValues && t.normalizedEntropy !== null);
  const picks: Array<[TensorSpectrum | undefined, string]> = [
    [[...withS].sort((a, b) => b.outliers - a.outliers)[0], 'most outliers'],
    [[...withS].sort((a, b) => a.normalizedEntropy! - b.normalizedEntropy!)[0], 'lowest entropy'],
    [[...withS].sort((a, b) => b.normalizedEntropy! - a.normalizedEntropy!)[0], 'highest entropy'],
  ];
  const representatives: TourRepresentative[] = [];
  for (const [t, why] of picks) {
    if (!t || representatives.some((r) => r.name === t.name)) continue;
    representatives.push({ name: t.name, why, shape: t.matrix, singularValues: t.singularValues!, mpEdge: t.mpEdge, outliers: t.outliers, truncationErrors: t.truncation.errors });
  }
  return { backend, seconds, tensors: rows, byKind, topOutliers, representatives, failures };
}

/** Bond-cut entropies of one square-ish block matrix over as many sites as its size allows (up to 6). */
async function bondProfile(modelPath: string, names: string[], backend: LinalgBackend, signal: AbortSignal): Promise<TourBondProfile> {
  const ckpt = await open(modelPath);
  try {
    const blockMatrices = ckpt.tensors.filter((t) => t.shape.length === 2 && tensorKind(t.name).depth !== null && names.includes(t.name));
    const t = blockMatrices.find((x) => /attn_output|o_proj|c_proj|out_proj/.test(x.name) && x.shape[0] === x.shape[1]) ?? blockMatrices[0];
    if (!t) throw new CheckpointError(ckpt.path, 'has no 2-D block matrix to draw a bond-cut entropy profile of');
    const [rows, cols] = t.shape;
    const sites = Math.max(2, Math.min(6, Math.floor(Math.log2(Math.min(rows, cols)))));
    const mpo = await decomposeMpo(await t.read({ signal }), rows, cols, { backend, sites, spectra: 'exact', signal });
    return {
      tensor: t.name, shape: [rows, cols], outFactors: mpo.outFactors, inFactors: mpo.inFactors,
      bonds: mpo.bonds.map((b) => ({ index: b.index, leftDim: b.leftDim, rightDim: b.rightDim, entropy: b.entropy, renyi2: b.renyi2, maxEntropy: b.maxEntropy })),
    };
  } finally { await ckpt.close(); }
}

async function compressStep(modelPath: string, outDir: string, chi: number, backend: LinalgBackend, io: CliIO): Promise<TourCompression> {
  const started = performance.now();
  const ext = nodePath.extname(modelPath).toLowerCase() === '.gguf' ? '.gguf' : '.safetensors';
  const out = nodePath.join(outDir, `${nodePath.basename(modelPath, nodePath.extname(modelPath))}.mpo-chi${chi}${ext}`);
  const recipe: Recipe = validateRecipe({ version: 1, input: modelPath, output: { path: out }, compress: [{ method: 'mpo', chi }] });
  const r = await applyRecipe(recipe, {
    backend, signal: io.signal,
    onProgress: (p) => { if (p.phase === 'write' && (p.index % 8 === 0 || p.index === p.count - 1)) io.progress(`  [write ${p.index + 1}/${p.count}] ${p.message}`); },
  });
  const tensors = r.tensors.filter((t) => t.method === 'mpo').map((t) => ({ name: t.name, params: t.params, denseParams: t.denseParams, relativeError: t.relativeError, bondDimensions: t.bondDimensions ?? [] }));
  const reopened = await open(out);
  let re: TourCompression['reopened'];
  try { re = { tensors: reopened.tensors.length, totalParams: summarize(reopened).totalParams, format: reopened.formatDetail }; } finally { await reopened.close(); }
  const errs = tensors.map((t) => t.relativeError);
  return {
    method: 'mpo', chi, out, format: r.format, tensors,
    compressedDenseParams: tensors.reduce((a, t) => a + t.denseParams, 0),
    compressedParams: tensors.reduce((a, t) => a + t.params, 0),
    originalParams: r.totals.originalParams, totalParams: r.totals.totalParams, ratio: r.totals.ratio,
    meanRelativeError: mean(errs), maxRelativeError: errs.length ? Math.max(...errs) : 0,
    seconds: (performance.now() - started) / 1000, reopened: re,
  };
}

async function evaluateStep(modelPath: string, compressed: string, signal: AbortSignal): Promise<TourEvaluation> {
  const started = performance.now();
  const original = await loadModel(modelPath, { signal });
  try {
    const candidate = await loadModel(compressed, { signal });
    try {
      const e = await evaluateModel(candidate, original, { signal });
      return {
        text: e.text, tokens: e.tokens, perplexity: e.perplexity, accuracy: e.accuracy, klDivergence: e.klDivergence, top1Agreement: e.top1Agreement,
        samples: e.samples, originalPerplexity: e.againstMetrics!.perplexity, originalAccuracy: e.againstMetrics!.accuracy,
        seconds: (performance.now() - started) / 1000,
      };
    } finally { await candidate.close(); }
  } finally { await original.close(); }
}

/**
 * The virus-and-scalpel demonstration on one MLP matrix. The virus s u v^T (s = 3 s_1(W)) is hidden
 * in W's weakest singular directions (all but the last 4 of its rank are avoided): removing the top
 * singular triplet of W' = W + s u v^T then takes the virus out without taking W's own strong
 * directions with it. (A virus along random u, v costs W its own components along u and v when it is
 * cut out, about 0.14 ||W|| here, whatever s is.)
 */
async function scalpelStep(modelPath: string, backend: LinalgBackend): Promise<TourScalpel> {
  const started = performance.now();
  const ckpt = await open(modelPath);
  let rank: number;
  try {
    const t = ckpt.get('blk.2.ffn_down.weight') ?? ckpt.tensors.find((x) => x.shape.length === 2 && /down/.test(x.name));
    rank = t ? Math.min(t.shape[0], t.shape[1]) : 0;
  } finally { await ckpt.close(); }
  const demo = await runScalpelDemo(modelPath, { backend, avoidTop: Math.max(0, rank - 4) });
  return { ...demo, seconds: (performance.now() - started) / 1000 };
}

async function writeAtomically(target: string, text: string): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** The plain-text summary printed to stdout. */
export function formatTour(r: TourResult): string {
  const L: string[] = [];
  const m = r.model, s = r.spectra, c = r.compression, e = r.evaluation, d = r.scalpel;
  L.push(`== 1. model: ${m.path}`);
  L.push(`${m.formatDetail}, ${m.tensors} tensors (${m.matrices} matrices), ${int(m.totalParams)} parameters, ${int(m.sizeOnDisk)} bytes`);
  if (m.facts.length) L.push(m.facts.map((f) => `${f.key}=${f.value}`).join('  '));
  L.push('', `== 2. spectra: ${s.tensors.length} matrices, backend ${s.backend}, ${s.seconds.toFixed(2)} s`);
  L.push(table([['kind', 'tensors', 'mean S/ln r', 'mean eff.rank', 'outliers'], ...s.byKind.map((k) => [k.kind, String(k.count), fixed(k.meanNormalizedEntropy), fixed(k.meanEffectiveRank, 1), String(k.outliers)])], ['l', 'r', 'r', 'r', 'r']));
  L.push('most outliers above the Marchenko-Pastur edge:');
  L.push(table([['tensor', 'outliers', 's_1', 'MP edge'], ...s.topOutliers.map((t) => [t.name, String(t.outliers), fixed(t.spectralNorm), fixed(t.mpEdge)])], ['l', 'r', 'r', 'r']));
  L.push(`bond-cut entropies of ${r.bondProfile.tensor} (${r.bondProfile.outFactors.length} sites): ${r.bondProfile.bonds.map((b) => `${fixed(b.entropy, 2)}/${fixed(b.maxEntropy, 2)}`).join('  ')}`);
  L.push('', `== 3. MPO compression, chi ${c.chi}, ${c.tensors.length} block matrices -> ${c.out}`);
  L.push(`parameters ${int(c.originalParams)} -> ${int(c.totalParams)} (ratio ${fixed(c.ratio, 4)}, ${fixed(1 / c.ratio, 2)}x fewer); compressed tensors ${int(c.compressedDenseParams)} -> ${int(c.compressedParams)}`);
  L.push(`relative error per tensor: mean ${fixed(c.meanRelativeError, 4)}, max ${fixed(c.maxRelativeError, 4)}; reopened: ${c.reopened.format}, ${c.reopened.tensors} tensors`);
  L.push(`chi sweep (in memory, ${r.chiSweep.sites} sites; dense perplexity ${fixed(r.chiSweep.dense.perplexity, 3)}):`);
  L.push(table([['chi', 'model params', 'x fewer', 'rel. error', 'perplexity', 'top-1 agree', 'KL'], ...r.chiSweep.rows.map((x) => [String(x.chi), int(x.modelParams), fixed(x.modelRatio, 2), fixed(x.relativeError, 4), fixed(x.perplexity, 3), fixed(x.top1Agreement, 4), fixed(x.klDivergence, 4)])], ['r', 'r', 'r', 'r', 'r', 'r', 'r']));
  L.push('', `== 4. compressed vs original on "${e.text.source}" (${e.tokens} targets)`);
  L.push(table([['', 'compressed', 'original'], ['perplexity', fixed(e.perplexity, 3), fixed(e.originalPerplexity, 3)], ['accuracy', fixed(e.accuracy, 4), fixed(e.originalAccuracy, 4)],
    ['KL(orig||comp)', fixed(e.klDivergence, 4), ''], ['top-1 agreement', fixed(e.top1Agreement, 4), '']], ['l', 'r', 'r']));
  L.push(qualityNote(r));
  for (const sm of e.samples) {
    L.push(`greedy from ${sm.prompt === '' ? 'BOS' : JSON.stringify(sm.prompt)}:`);
    L.push(`  original:   ${JSON.stringify(sm.against ?? '')}`);
    L.push(`  compressed: ${JSON.stringify(sm.model)}`);
  }
  L.push('', `== 5. virus and scalpel on ${d.tensor} [${d.shape.join(', ')}]: W' = W + s u v^T, s = ${fixed(d.strength)} (${fixed(d.strength / d.spectra.original.s1, 2)} x s_1)`);
  L.push(table([['', 's_1', 's_2', 's_1/s_2', 'MP edge', 'above edge', 'agreement', 'KL', 'ppl'],
    ['original', fixed(d.spectra.original.s1), fixed(d.spectra.original.s2), fixed(d.spectra.original.gap, 2), fixed(d.spectra.original.mpEdge), String(d.spectra.original.outliersAboveEdge), '1', '0', fixed(d.perplexity.original, 3)],
    ['infected', fixed(d.spectra.virus.s1), fixed(d.spectra.virus.s2), fixed(d.spectra.virus.gap, 2), fixed(d.spectra.virus.mpEdge), String(d.spectra.virus.outliersAboveEdge), fixed(d.agreement.virus, 4), fixed(d.kl.virus, 4), fixed(d.perplexity.virus, 3)],
    ['repaired', fixed(d.spectra.repaired.s1), fixed(d.spectra.repaired.s2), fixed(d.spectra.repaired.gap, 2), fixed(d.spectra.repaired.mpEdge), String(d.spectra.repaired.outliersAboveEdge), fixed(d.agreement.repaired, 4), fixed(d.kl.repaired, 4), fixed(d.perplexity.repaired, 3)]],
  ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  L.push(`greedy from ${d.generation.prompt === '' ? 'BOS' : JSON.stringify(d.generation.prompt)}:`);
  L.push(`  original: ${JSON.stringify(d.generation.original)}`);
  L.push(`  infected: ${JSON.stringify(d.generation.virus)}`);
  L.push(`  repaired: ${JSON.stringify(d.generation.repaired)}`);
  L.push(`repair error ||W''-W||/||W|| = ${sci(d.repairRelativeError)}; virus changed the text: ${d.generation.virusChanged ? 'yes' : 'no'}; repaired = original: ${d.generation.repairedEqualsOriginal ? 'yes' : 'no'}`);
  L.push('', `report: ${r.reportPath}`, `(${r.seconds.toFixed(1)} s)`);
  return L.join('\n');
}

/**
 * `tensor-scalpel tour`: the first five minutes on the bundled sample model, headless: summary,
 * spectra, MPO compression at chi, evaluation against the original, the virus-and-scalpel
 * demonstration, and a self-contained HTML report (index.html) plus tour.json in the output folder.
 */
export const tourCommand: CliCommand = {
  name: 'tour',
  summary: 'A guided tour on the bundled sample model: spectra, MPO compression, evaluation, the virus and the scalpel; writes an HTML report',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      model: { type: 'string' }, chi: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
    }, USAGE);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}" (give a model with --model)\nusage: ${USAGE}`);
    const chi = numberOpt(values.chi, 'chi', { integer: true, min: 1, max: 4096 }) ?? 8;
    const modelPath = nodePath.resolve(values.model ?? sampleModelPath());
    if (!existsSync(modelPath)) throw new UsageError(`model not found: ${modelPath}${values.model ? '' : ' (the bundled sample: media/sample/stories260K.gguf)'}`);
    const outDir = nodePath.resolve(values.out ?? 'tensor-scalpel-tour');
    await fs.mkdir(outDir, { recursive: true });
    const started = performance.now();
    const step = (t: string) => io.progress(`tour: ${t} (${((performance.now() - started) / 1000).toFixed(1)} s)`);

    step(`1/6 opening ${modelPath}`);
    const ckpt = await open(modelPath);
    let model: TourModel;
    let matrixNames: string[];
    try {
      const sum = summarize(ckpt);
      matrixNames = ckpt.tensors.filter((t) => t.shape.length === 2).map((t) => t.name);
      model = {
        path: ckpt.path, format: ckpt.format, formatDetail: ckpt.formatDetail, sizeOnDisk: ckpt.sizeOnDisk, tensors: ckpt.tensors.length,
        matrices: matrixNames.length, totalParams: sum.totalParams, dtypeMix: sum.dtypeMix, facts: modelFacts(ckpt.metadata),
      };
    } finally { await ckpt.close(); }

    const backend = await getLinalgBackend('auto', { threads: 1 });
    try {
      step(`2/6 spectra of ${matrixNames.length} matrices`);
      const scan = await scanSpectra(modelPath, {
        cache: false, signal: io.signal, filter: (t) => t.shape.length === 2,
        onProgress: (p) => { if (p.status === 'failed') io.progress(`  ${p.name}: ${p.error}`); },
      });
      const spectra = spectraSummary(scan.tensors, scan.backends.join(',') || backend.name, scan.seconds, scan.failures);
      const bond = await bondProfile(modelPath, matrixNames, backend, io.signal);

      step(`3/6 MPO compression at chi ${chi}`);
      const compression = await compressStep(modelPath, outDir, chi, backend, io);

      const sweepStarted = performance.now();
      const chis = [...new Set([4, 8, 16, 32, 64, chi])].sort((a, b) => a - b);
      const sweep = await compressionTable(modelPath, { chis, backend, signal: io.signal });
      const chiSweep: TourChiSweep = { sites: sweep.sites, dense: sweep.dense, rows: sweep.rows, seconds: (performance.now() - sweepStarted) / 1000 };

      step('4/6 evaluating the compressed model against the original');
      const evaluation = await evaluateStep(modelPath, compression.out, io.signal);

      step('5/6 the virus and the scalpel');
      const scalpel = await scalpelStep(modelPath, backend);

      step('6/6 writing the report');
      const reportPath = nodePath.join(outDir, 'index.html');
      const result: TourResult = {
        tool: 'tensor-scalpel tour', createdAt: new Date().toISOString(), outDir, reportPath, model, spectra, bondProfile: bond,
        compression, chiSweep, evaluation, scalpel, seconds: 0,
      };
      result.seconds = (performance.now() - started) / 1000;
      await writeAtomically(reportPath, renderTourReport(result));
      await writeAtomically(nodePath.join(outDir, 'tour.json'), JSON.stringify(result, null, 2) + '\n');
      io.out(values.json ? JSON.stringify(result, null, 2) : formatTour(result));
      io.progress(`tour: done in ${result.seconds.toFixed(1)} s; open ${reportPath}`);
      return spectra.failures.length > 0 ? 1 : 0;
    } finally {
      await backend.dispose();
    }
  },
};
