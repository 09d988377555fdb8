/**
 * The apply engine: runs a recipe over an input checkpoint tensor by tensor, streaming — read one
 * tensor, transform it, hand it to the writer, drop it — so peak memory stays near the largest
 * tensor (plus its decomposition's working set), never the whole model.
 *
 * Passes over the input:
 *   1. provenance: sha256 of every input file, computed streaming (64 KiB chunks);
 *   2. planning (only when needed): a global budget reads each budgeted tensor once for its spectrum
 *      (after the recipe's edits); factorized output of error-targeted tensors reads them once to fix
 *      their ranks / bond dimensions, because every writer declares all tensor shapes up front;
 *   3. writing: the writer pulls tensors in file order; each producer reads its tensor, applies
 *      inject -> ablate -> compress, and returns dense values (or the first factor, keeping the
 *      remaining small factors until the writer asks for them).
 * Cancellation (AbortSignal) is checked at every tensor boundary; the output is written to a
 * temporary file beside the target and renamed only on success (checkpoint/atomicWrite.ts).
 *
 * Reported per changed tensor: params (of the stored representation: k (m + n) for low rank,
 * sum_k chi_{k-1} o_k i_k chi_k for an MPO, m n for dense edits), denseParams = m n, and
 *   relativeError = ||W_out - W_in||_F / ||W_in||_F
 * against the input tensor as read (before the output dtype's rounding). For compression alone this
 * is the decomposition's own exact error (Eckart-Young tail / the TT-SVD identity); with edits it is
 * measured on the reconstruction.
 * Totals: originalParams = sum of all input tensors' params, totalParams = the same with every
 * compressed tensor counted at its factor params, ratio = totalParams / originalParams.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import * as nodePath from 'node:path';
import { open } from '../checkpoint/open';
import { CheckpointError, CancelledError, throwIfAborted } from '../checkpoint/errors';
import type { Checkpoint, TensorEntry } from '../checkpoint/types';
import type { GgufCheckpoint, GgufValue } from '../checkpoint/gguf';
import {
  writeSafetensors, FACTORIZATION_METADATA_KEY, factorizationMetadataValue, lowRankFactorization, mpoFactorization,
  factorShapes, type FactorizedTensor, type TensorSource,
} from '../checkpoint/safetensorsWriter';
import { writeGguf, type GgufTensorSource } from '../checkpoint/ggufWriter';
import { withAtomicOutput } from '../checkpoint/atomicWrite';
import { writeOnnx, type OnnxReplacement } from '../checkpoint/onnxWriter';
import { getLinalgBackend } from '../linalg';
import type { LinalgBackend } from '../linalg/types';
import { decomposeMpo, resolveSitePlan, bondDimensionsForChi, FactorisationError } from '../analysis/mpo';
import { lowRankFactors, rankForRelativeError } from '../analysis/lowrank';
import { matrixToSiteTensor, relativeFrobeniusError, sumSquares } from '../analysis/mpoTensor';
import {
  type Recipe, type CompressRule, type OutputFormat, type TensorSelector, RecipeError,
  selectorMatcher, isPlainName, formatFromPath, OUTPUT_DTYPES,
} from './recipe';
import { reconstructMpoChunked, lowRankProductInto } from './reconstruct';
import { allocateBudget, BudgetError, type BudgetAllocation, type BudgetInput } from './budget';
import {
  residualWriters, writerAxis, ablateDirection, removeTopDirections, injectionVectors, injectRankOne, loadDirection,
  type ResidualWriterReport,
} from './ablate';

export const RECIPE_METADATA_KEY = 'tensor_scalpel.recipe';
export const PROVENANCE_METADATA_KEY = 'tensor_scalpel.provenance';
export const INPUT_SHA256_METADATA_KEY = 'tensor_scalpel.input_sha256';
export const TOOL_NAME = 'tensor-scalpel';

export interface ApplyProgress {
  phase: 'hash' | 'plan' | 'write';
  /** 0-based index within the phase and the phase's count (files for 'hash', tensors otherwise). */
  index: number;
  count: number;
  name?: string;
  message: string;
}

export interface ApplyOptions {
  /** A backend to use (not disposed); default: getLinalgBackend(backendPreference). */
  backend?: LinalgBackend;
  backendPreference?: 'auto' | 'native' | 'portable';
  signal?: AbortSignal;
  onProgress?: (p: ApplyProgress) => void;
  /** Override recipe.input / recipe.output.path. */
  input?: string;
  output?: string;
  /** Write `<out>.recipe.json` (default true). */
  sidecar?: boolean;
}

export interface FileProvenance {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

export interface Provenance {
  tool: string;
  /** The checkpoint as opened: its format and every file it spans (shards, external data). */
  input: { path: string; name: string; format: string; size: number; sha256: string; files: FileProvenance[] };
}

export interface TensorReport {
  name: string;
  params: number;
  denseParams: number;
  relativeError: number;
  /** What was done, in order: "inject s=100", "ablate direction", "remove top 1", "mpo chi=8", "svd rank=16". */
  operations: string[];
  /** Compression details. */
  method?: 'mpo' | 'svd';
  rank?: number;
  bondDimensions?: number[];
  outFactors?: number[];
  inFactors?: number[];
  /** 'factorized': stored as the factor tensors listed in `stored`. */
  storage: 'dense' | 'factorized';
  stored: string[];
  /** Removed singular values (remove-top) for the record. */
  removedSingularValues?: number[];
}

export interface ApplyTotals {
  originalParams: number;
  totalParams: number;
  ratio: number;
  out: string;
}

export interface ApplyResult {
  tensors: TensorReport[];
  totals: ApplyTotals;
  format: OutputFormat;
  /** Every file written (shards + index, or the one file), and the sidecar. */
  files: string[];
  sidecar?: string;
  provenance: Provenance;
  /** The residual writers used by direction ablation (when any). */
  residual?: ResidualWriterReport;
  budget?: BudgetAllocation;
  warnings: string[];
}

/** sha256 of a file, streamed (never the whole file in memory). */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    const s = createReadStream(file, { highWaterMark: 1 << 20 });
    const onAbort = () => s.destroy(new CancelledError());
    signal?.addEventListener('abort', onAbort, { once: true });
    s.on('data', (chunk) => hash.update(chunk as Buffer));
    s.on('error', (e) => { signal?.removeEventListener('abort', onAbort); reject(e); });
    s.on('end', () => { signal?.removeEventListener('abort', onAbort); resolve(); });
  });
  return hash.digest('hex');
}

/** The input's provenance: name, size and streaming sha256 of every file of the checkpoint. */
export async function provenanceOf(ckpt: Checkpoint, opts: { signal?: AbortSignal; onProgress?: (p: ApplyProgress) => void } = {}): Promise<Provenance> {
  const files: FileProvenance[] = [];
  for (let i = 0; i < ckpt.files.length; i++) {
    throwIfAborted(opts.signal);
    const f = ckpt.files[i];
    opts.onProgress?.({ phase: 'hash', index: i, count: ckpt.files.length, name: nodePath.basename(f), message: `sha256 of ${nodePath.basename(f)}` });
    const st = await fsp.stat(f);
    files.push({ name: nodePath.basename(f), path: nodePath.resolve(f), size: st.size, sha256: await sha256File(f, opts.signal) });
  }
  return {
    tool: TOOL_NAME,
    input: {
      path: nodePath.resolve(ckpt.path), name: nodePath.basename(ckpt.path), format: ckpt.format,
      size: files.reduce((a, f) => a + f.size, 0), sha256: files[0]?.sha256 ?? '', files,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Planning

type Edit =
  | { kind: 'inject'; strength: number; seed?: number; u?: number[]; v?: number[] }
  | { kind: 'direction'; r: Float64Array; axis: 0 | 1; source: string }
  | { kind: 'removeTop'; k: number };

interface Compression {
  method: 'mpo' | 'svd';
  rank?: number;
  /** MPO: uniform chi, or per-bond dimensions fixed by planning. */
  chi?: number | number[];
  error?: number;
  sites?: number;
  outFactors?: number[];
  inFactors?: number[];
  source: string;
}

interface TensorPlan {
  entry: TensorEntry;
  rows: number;
  cols: number;
  edits: Edit[];
  compression?: Compression;
  /** Set when the factor shapes are known (factorized output). */
  factorization?: FactorizedTensor;
}

/** The default selection: the 2-D matrices of the transformer blocks (attention and MLP weights). */
function defaultSelection(t: TensorEntry): boolean {
  return t.shape.length === 2 && t.group.kind === 'block';
}

/** Resolves a selector against the checkpoint; plain names must exist, and the whole selector must match something. */
function select(ckpt: Checkpoint, sel: TensorSelector | undefined, path: string): TensorEntry[] {
  if (sel === undefined) return ckpt.tensors.filter(defaultSelection);
  const list = Array.isArray(sel) ? sel : [sel];
  for (const s of list) {
    if (isPlainName(s) && !ckpt.get(s)) throw new RecipeError(path, `no tensor named ${JSON.stringify(s)} in ${ckpt.path}`);
  }
  const match = selectorMatcher(sel);
  const found = ckpt.tensors.filter((t) => match(t.name));
  if (found.length === 0) throw new RecipeError(path, `${JSON.stringify(sel)} matches no tensor of ${ckpt.path}`);
  return found;
}

function matrixDims(t: TensorEntry): { rows: number; cols: number } {
  if (t.shape.length === 1) return { rows: t.shape[0], cols: 1 };
  return { rows: t.shape[0], cols: t.params / Math.max(1, t.shape[0]) };
}

function describeCompression(c: Compression): string {
  if (c.method === 'svd') return c.rank !== undefined ? `svd rank=${c.rank}` : `svd error=${c.error}`;
  const chi = Array.isArray(c.chi) ? `[${c.chi.join(',')}]` : c.chi;
  return `mpo ${chi !== undefined ? `chi=${chi}` : ''}${chi !== undefined && c.error !== undefined ? ' ' : ''}${c.error !== undefined ? `error=${c.error}` : ''}`;
}

function describeEdit(e: Edit): string {
  if (e.kind === 'inject') return `inject s=${e.strength}`;
  if (e.kind === 'direction') return `ablate direction (${e.source}, axis ${e.axis})`;
  return `remove top ${e.k}`;
}

/**
 * Reads a tensor and applies its edits (inject, then ablations in recipe order). Returns the edited
 * values and, when there were edits, the original (for the relative error).
 */
async function readEdited(plan: TensorPlan, backend: LinalgBackend, signal: AbortSignal | undefined, keepOriginal: boolean): Promise<{ w: Float32Array; original?: Float32Array; removed?: number[] }> {
  const w = await plan.entry.read({ signal });
  if (plan.edits.length === 0) return { w };
  const original = keepOriginal ? Float32Array.from(w) : undefined;
  const { rows, cols } = plan;
  let removed: number[] | undefined;
  for (const e of plan.edits) {
    throwIfAborted(signal);
    if (e.kind === 'inject') {
      const { u, v } = injectionVectors(rows, cols, e, plan.entry.name);
      injectRankOne(w, rows, cols, e.strength, u, v);
    } else if (e.kind === 'direction') {
      ablateDirection(w, rows, cols, e.r, e.axis, plan.entry.name);
    } else {
      const r = await removeTopDirections(w, rows, cols, e.k, backend, signal);
      removed = [...(removed ?? []), ...r.singularValues];
    }
  }
  return { w, original, removed };
}

/** Exact Schmidt values at every bond of the MPO site plan: the singular values of P's unfoldings (analysis/mpo.ts). */
async function bondSpectra(w: Float32Array, rows: number, cols: number, outFactors: number[], inFactors: number[], backend: LinalgBackend, signal?: AbortSignal): Promise<Float64Array[]> {
  const P = matrixToSiteTensor(w, rows, cols, outFactors, inFactors);
  const d = outFactors.map((o, k) => o * inFactors[k]);
  const out: Float64Array[] = [];
  let L = 1;
  for (let k = 0; k < d.length - 1; k++) {
    L *= d[k];
    const R = P.length / L;
    out.push(await backend.singularValues({ rows: L, cols: R, data: P }, { signal }));
  }
  return out;
}

interface Compressed {
  /** Dense reconstruction (dense output) or undefined (factorized output). */
  dense?: Float32Array;
  factors: Float32Array[];
  factorization: FactorizedTensor;
  params: number;
  /** Relative error of the compression against its (edited) input. */
  relativeError: number;
  rank?: number;
  bondDimensions?: number[];
  outFactors?: number[];
  inFactors?: number[];
}

/**
 * Compresses `box.w` (dropping the box's reference as soon as the decomposition no longer needs it,
 * so a dense reconstruction does not coexist with the input matrix).
 */
async function compress(name: string, box: { w?: Float32Array }, rows: number, cols: number, c: Compression, backend: LinalgBackend, wantDense: boolean, signal?: AbortSignal): Promise<Compressed> {
  let w = box.w!;
  if (c.method === 'svd') {
    let rank = c.rank;
    if (rank === undefined) {
      const s = await backend.singularValues({ rows, cols, data: w }, { signal });
      rank = Math.max(1, rankForRelativeError(s, c.error!));
    }
    const f = await lowRankFactors({ rows, cols, data: w }, rank, backend, { signal });
    const reuse = w; // the dense product goes into the input's buffer (see the mpo case)
    box.w = undefined;
    w = undefined as unknown as Float32Array;
    const dense = wantDense ? await lowRankProductInto(f.A, f.B, backend, reuse, signal) : undefined;
    return {
      dense, factors: [f.A.data, f.B.data], factorization: lowRankFactorization(name, rows, cols, f.rank),
      params: f.params, relativeError: f.relativeError, rank: f.rank,
    };
  }
  let mpo;
  try {
    mpo = await decomposeMpo(w, rows, cols, {
      backend,
      truncation: { ...(c.chi !== undefined ? { chi: c.chi } : {}), ...(c.error !== undefined ? { relativeError: c.error } : {}) },
      sites: c.outFactors ? undefined : (c.sites ?? 2),
      outFactors: c.outFactors,
      inFactors: c.inFactors,
      spectra: 'sweep',
      signal,
    });
  } catch (e) {
    if (e instanceof FactorisationError) throw new CheckpointError('(recipe)', `${c.source}: ${e.message}`, { tensor: name });
    throw e;
  }
  // The input's buffer is ours (a fresh read) and no longer needed: the reconstruction reuses it,
  // so a dense output costs no second full-size array.
  const reuse = w;
  box.w = undefined;
  w = undefined as unknown as Float32Array;
  const dense = wantDense ? await reconstructMpoChunked(mpo, backend, signal, reuse) : undefined;
  return {
    dense, factors: mpo.cores.map((k) => k.data),
    factorization: mpoFactorization(name, rows, cols, mpo.outFactors, mpo.inFactors, mpo.bondDimensions),
    params: mpo.params, relativeError: mpo.relativeError, bondDimensions: mpo.bondDimensions,
    outFactors: mpo.outFactors, inFactors: mpo.inFactors,
  };
}

function newReport(p: TensorPlan, factorized: boolean): TensorReport {
  return {
    name: p.entry.name, params: p.entry.params, denseParams: p.entry.params, relativeError: 0,
    operations: [...p.edits.map(describeEdit), ...(p.compression ? [describeCompression(p.compression)] : [])],
    storage: factorized && p.compression ? 'factorized' : 'dense', stored: [],
  };
}

function finish(report: TensorReport, p: TensorPlan, c: Compressed | undefined, relErr: number, removed?: number[]): void {
  report.relativeError = relErr;
  if (removed) report.removedSingularValues = removed;
  if (c) {
    report.params = c.params;
    report.method = p.compression!.method;
    if (c.rank !== undefined) report.rank = c.rank;
    if (c.bondDimensions) { report.bondDimensions = c.bondDimensions; report.outFactors = c.outFactors; report.inFactors = c.inFactors; }
  }
}

/**
 * ONNX output rewrites the input model's initializers (checkpoint/onnxWriter.ts), which takes every
 * replacement at once: the changed tensors (dense values or their factors) are all held in memory
 * until the model is written — fine for ONNX models (protobuf keeps them near 2 GB), unlike the
 * pull-based safetensors / GGUF writers.
 */
async function buildOnnxReplacements(
  ordered: TensorPlan[], reports: Map<string, TensorReport>, factorized: boolean, backend: LinalgBackend,
  signal: AbortSignal | undefined, progress: (name: string) => void,
): Promise<Map<string, OnnxReplacement>> {
  const replacements = new Map<string, OnnxReplacement>();
  for (const p of ordered) {
    throwIfAborted(signal);
    progress(p.entry.name);
    const report = newReport(p, factorized);
    reports.set(p.entry.name, report);
    const ed: { w?: Float32Array; original?: Float32Array; removed?: number[] } = await readEdited(p, backend, signal, true);
    const { original, removed } = ed;
    if (!p.compression) {
      finish(report, p, undefined, original ? relativeFrobeniusError(original, ed.w!) : 0, removed);
      report.stored.push(p.entry.name);
      replacements.set(p.entry.name, { kind: 'dense', data: ed.w! });
      continue;
    }
    const c = await compress(p.entry.name, ed, p.rows, p.cols, p.compression, backend, !factorized || original !== undefined, signal);
    finish(report, p, c, original ? relativeFrobeniusError(original, c.dense!) : c.relativeError, removed);
    if (!factorized) {
      report.stored.push(p.entry.name);
      replacements.set(p.entry.name, { kind: 'dense', data: c.dense! });
    } else if (c.factorization.kind === 'lowrank') {
      report.stored.push(...c.factorization.tensors);
      replacements.set(p.entry.name, { kind: 'lowrank', a: c.factors[0], b: c.factors[1] });
    } else {
      report.stored.push(...c.factorization.tensors);
      replacements.set(p.entry.name, {
        kind: 'mpo', cores: c.factors, coreShapes: factorShapes(c.factorization) as Array<[number, number, number, number]>,
        outFactors: c.outFactors!, inFactors: c.inFactors!,
      });
    }
  }
  return replacements;
}

/** Storage dtype of a float tensor in the output format (see RecipeOutput.dtype). */
function floatDtype(format: OutputFormat, requested: string | undefined, inputDtype: string, dims: number): string {
  const allowed = OUTPUT_DTYPES[format];
  if (requested && (format !== 'gguf' || dims >= 2)) return requested;
  return allowed.includes(inputDtype) ? inputDtype : 'F32';
}

const SAFETENSORS_PASS = new Set(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2']);

/**
 * Applies a recipe. Input and output come from the recipe (or `opts.input` / `opts.output`). See the
 * file comment for the passes, the error measure and the totals.
 */
export async function applyRecipe(recipe: Recipe, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const signal = opts.signal;
  const inputPath = opts.input ?? recipe.input;
  if (!inputPath) throw new RecipeError('recipe.input', 'required (no input checkpoint given)');
  const outPath = opts.output ?? recipe.output?.path;
  if (!outPath) throw new RecipeError('recipe.output.path', 'required (no output path given)');
  const output = { ...(recipe.output ?? { path: outPath }), path: nodePath.resolve(outPath) };
  const format: OutputFormat = output.format ?? formatFromPath(output.path);
  if (output.dtype && !OUTPUT_DTYPES[format].includes(output.dtype)) {
    throw new RecipeError('recipe.output.dtype', `${format} output stores ${OUTPUT_DTYPES[format].join(', ')}, not ${output.dtype}`);
  }
  const factorized = output.factorized === true;
  const warnings: string[] = [];

  const ckpt = await open(nodePath.resolve(inputPath));
  const ownBackend = opts.backend === undefined;
  const backend = opts.backend ?? await getLinalgBackend(opts.backendPreference ?? 'auto');
  try {
    const provenance = await provenanceOf(ckpt, { signal, onProgress: opts.onProgress });

    // --- which tensor gets what
    const plans = new Map<string, TensorPlan>();
    const planFor = (t: TensorEntry): TensorPlan => {
      let p = plans.get(t.name);
      if (!p) { p = { entry: t, ...matrixDims(t), edits: [] }; plans.set(t.name, p); }
      return p;
    };

    (recipe.inject ?? []).forEach((rule, i) => {
      const t = ckpt.get(rule.tensor);
      if (!t) throw new RecipeError(`recipe.inject[${i}].tensor`, `no tensor named ${JSON.stringify(rule.tensor)} in ${ckpt.path}`);
      if (t.shape.length !== 2) throw new RecipeError(`recipe.inject[${i}].tensor`, `${t.name} has shape [${t.shape.join(', ')}]; injection needs a matrix`);
      const p = planFor(t);
      // Validate explicit vectors now (clear message before any work).
      try { injectionVectors(p.rows, p.cols, rule, t.name); } catch (e) { throw new RecipeError(`recipe.inject[${i}]`, (e as Error).message); }
      p.edits.push({ kind: 'inject', strength: rule.strength, seed: rule.seed, u: rule.u, v: rule.v });
    });

    let residual: ResidualWriterReport | undefined;
    for (let i = 0; i < (recipe.ablate ?? []).length; i++) {
      const rule = recipe.ablate![i];
      const path = `recipe.ablate[${i}]`;
      if ('removeTop' in rule) {
        for (const t of select(ckpt, rule.tensors, `${path}.tensors`)) {
          if (t.shape.length !== 2) {
            if (rule.tensors !== undefined && (Array.isArray(rule.tensors) ? rule.tensors.includes(t.name) : rule.tensors === t.name)) {
              throw new RecipeError(`${path}.tensors`, `${t.name} has shape [${t.shape.join(', ')}]; removing singular directions needs a matrix`);
            }
            continue;
          }
          planFor(t).edits.push({ kind: 'removeTop', k: rule.removeTop });
        }
        continue;
      }
      const dir = await loadDirection(rule.direction, rule.key);
      const d = dir.r.length;
      residual ??= residualWriters(ckpt);
      const detected = new Map(residual.writers.map((w) => [w.name, w] as const));
      const names = rule.writers ?? residual.writers.map((w) => w.name);
      if (names.length === 0) {
        throw new RecipeError(`${path}.writers`, `no residual-stream writers detected in ${ckpt.path} (${residual.notes.join('; ')}); list them explicitly`);
      }
      if (rule.writers === undefined && residual.dModel !== undefined && residual.dModel !== d) {
        throw new CheckpointError(rule.direction, `direction ${dir.tensor} has length ${d} but the model's d_model is ${residual.dModel} (from ${residual.writers[0]?.name ?? 'the metadata'})`, { tensor: dir.tensor });
      }
      names.forEach((name, j) => {
        const t = ckpt.get(name);
        if (!t) throw new RecipeError(`${path}.writers[${j}]`, `no tensor named ${JSON.stringify(name)} in ${ckpt.path}`);
        let axis: 0 | 1;
        try {
          axis = writerAxis(name, t.shape, d, detected.get(name));
        } catch (e) {
          throw new CheckpointError(rule.direction, `${(e as Error).message} (direction ${dir.tensor} from this file)`, { tensor: name });
        }
        planFor(t).edits.push({ kind: 'direction', r: dir.r, axis, source: nodePath.basename(rule.direction) });
      });
    }

    (recipe.compress ?? []).forEach((rule: CompressRule, i) => {
      const path = `recipe.compress[${i}]`;
      for (const t of select(ckpt, rule.tensors, `${path}.tensors`)) {
        if (t.shape.length !== 2) {
          const explicit = Array.isArray(rule.tensors) ? rule.tensors.includes(t.name) : rule.tensors === t.name;
          if (explicit) throw new RecipeError(`${path}.tensors`, `${t.name} has shape [${t.shape.join(', ')}]; compression needs a matrix`);
          continue;
        }
        const p = planFor(t);
        if (p.compression) continue; // the first matching rule wins
        p.compression = { method: rule.method, rank: rule.rank, chi: rule.chi, error: rule.error, sites: rule.sites, outFactors: rule.outFactors, inFactors: rule.inFactors, source: path };
      }
    });

    // --- global budget
    let budget: BudgetAllocation | undefined;
    if (recipe.budget) {
      const b = recipe.budget;
      const chosen = select(ckpt, b.tensors, 'recipe.budget.tensors').filter((t) => t.shape.length === 2 && !plans.get(t.name)?.compression);
      if (chosen.length === 0) throw new RecipeError('recipe.budget.tensors', 'no 2-D tensor left for the budget (compress rules took them all)');
      const inputs: BudgetInput[] = [];
      for (let i = 0; i < chosen.length; i++) {
        throwIfAborted(signal);
        const t = chosen[i];
        const p = plans.get(t.name) ?? { entry: t, ...matrixDims(t), edits: [] };
        opts.onProgress?.({ phase: 'plan', index: i, count: chosen.length, name: t.name, message: `spectrum of ${t.name} for the budget` });
        const { w } = await readEdited(p, backend, signal, false);
        if (b.method === 'svd') {
          inputs.push({ name: t.name, method: 'svd', rows: p.rows, cols: p.cols, singularValues: await backend.singularValues({ rows: p.rows, cols: p.cols, data: w }, { signal }) });
        } else {
          let plan;
          try { plan = resolveSitePlan(p.rows, p.cols, { sites: b.sites ?? 2 }); } catch (e) { throw new CheckpointError('(recipe)', `recipe.budget: ${(e as Error).message}`, { tensor: t.name }); }
          inputs.push({
            name: t.name, method: 'mpo', rows: p.rows, cols: p.cols, outFactors: plan.outFactors, inFactors: plan.inFactors,
            bondSpectra: await bondSpectra(w, p.rows, p.cols, plan.outFactors, plan.inFactors, backend, signal), normSquared: sumSquares(w),
          });
        }
      }
      const dense = inputs.reduce((a, x) => a + x.rows * x.cols, 0);
      const target = b.params ?? Math.floor(b.ratio! * dense);
      try {
        budget = allocateBudget(inputs, target, { floor: b.floor });
      } catch (e) {
        if (e instanceof BudgetError) throw new RecipeError('recipe.budget', e.message);
        throw e;
      }
      for (const c of budget.choices) {
        if (!c.compressed) continue;
        const p = planFor(ckpt.get(c.name)!);
        p.compression = c.method === 'svd'
          ? { method: 'svd', rank: c.rank, source: 'recipe.budget' }
          : { method: 'mpo', chi: c.bondDims ?? c.chi, sites: b.sites ?? 2, source: 'recipe.budget' };
      }
    }

    // --- factor shapes up front (factorized output)
    const ordered = ckpt.tensors.map((t) => plans.get(t.name)).filter((p): p is TensorPlan => p !== undefined);
    if (factorized && format !== 'onnx') {
      const needRead = ordered.filter((p) => p.compression && !predictFactorization(p));
      for (const p of ordered) if (p.compression) p.factorization = predictFactorization(p);
      for (let i = 0; i < needRead.length; i++) {
        throwIfAborted(signal);
        const p = needRead[i];
        opts.onProgress?.({ phase: 'plan', index: i, count: needRead.length, name: p.entry.name, message: `ranks of ${p.entry.name} for its error target` });
        const ed = await readEdited(p, backend, signal, false);
        const c = await compress(p.entry.name, ed, p.rows, p.cols, p.compression!, backend, false, signal);
        // Fix the found ranks so the write pass produces exactly these shapes.
        p.compression = c.factorization.kind === 'lowrank'
          ? { ...p.compression!, rank: c.rank, error: undefined }
          : { ...p.compression!, chi: c.bondDimensions, error: undefined, outFactors: c.outFactors, inFactors: c.inFactors, sites: undefined };
        p.factorization = c.factorization;
      }
    }

    // --- the writer's tensor list
    const reports = new Map<string, TensorReport>();
    const factorEntries: Record<string, FactorizedTensor> = {};
    interface OutTensor { name: string; shape: number[]; dtype: string; data: () => Promise<Float32Array | Uint8Array> }
    const outTensors: OutTensor[] = [];
    let written = 0;
    const total = ckpt.tensors.length;
    const progress = (name: string) => opts.onProgress?.({ phase: 'write', index: written++, count: total, name, message: `writing ${name}` });

    for (const t of format === 'onnx' ? [] : ckpt.tensors) {
      const p = plans.get(t.name);
      const sameFormatRaw = (format === 'safetensors' && ckpt.format === 'safetensors' && SAFETENSORS_PASS.has(t.dtype))
        || (format === 'gguf' && ckpt.format === 'gguf');
      const isFloat = ['F32', 'F16', 'BF16', 'F64'].includes(t.dtype) || ckpt.format === 'gguf';
      const dtype = isFloat ? floatDtype(format, output.dtype, t.dtype, t.shape.length) : t.dtype;
      if (!p) {
        // Untouched tensors keep their stored bytes unless a dtype conversion was asked for (GGUF
        // keeps 1-D tensors as they are, like llama.cpp's quantizer).
        const converts = output.dtype !== undefined && isFloat && dtype !== t.dtype;
        const raw = sameFormatRaw && !converts;
        if (!raw && !isFloat) warnings.push(`${t.name}: ${t.dtype} stored as F32 in ${format}`);
        outTensors.push({
          name: t.name, shape: t.shape, dtype: raw ? t.dtype : (isFloat ? dtype : 'F32'),
          data: async () => { throwIfAborted(signal); progress(t.name); return raw ? t.readRaw({ signal }) : t.read({ signal }); },
        });
        continue;
      }
      const report = newReport(p, factorized);
      reports.set(t.name, report);
      const storeDtype = isFloat ? dtype : 'F32';
      const finishReport = (c: Compressed | undefined, relErr: number, removed?: number[]) => finish(report, p, c, relErr, removed);

      if (factorized && p.compression) {
        const f = p.factorization!;
        factorEntries[t.name] = f;
        const shapes = factorShapes(f);
        let pending: Float32Array[] | undefined;
        f.tensors.forEach((fname, k) => {
          report.stored.push(fname);
          outTensors.push({
            name: fname, shape: shapes[k], dtype: storeDtype,
            data: async () => {
              throwIfAborted(signal);
              if (k === 0) {
                progress(t.name);
                const ed = await readEdited(p, backend, signal, true);
                const { original, removed } = ed;
                const c = await compress(t.name, ed, p.rows, p.cols, p.compression!, backend, original !== undefined, signal);
                checkShapes(t.name, c.factorization, f);
                const relErr = original ? relativeFrobeniusError(original, c.dense!) : c.relativeError;
                finishReport(c, relErr, removed);
                pending = c.factors;
              }
              const out = pending![k];
              pending![k] = undefined as unknown as Float32Array; // drop once handed over
              return out;
            },
          });
        });
        continue;
      }

      report.stored.push(t.name);
      outTensors.push({
        name: t.name, shape: t.shape, dtype: storeDtype,
        data: async () => {
          throwIfAborted(signal);
          progress(t.name);
          const ed: { w?: Float32Array; original?: Float32Array; removed?: number[] } = await readEdited(p, backend, signal, true);
          const { original, removed } = ed;
          if (!p.compression) {
            finishReport(undefined, original ? relativeFrobeniusError(original, ed.w!) : 0, removed);
            return ed.w!;
          }
          const c = await compress(t.name, ed, p.rows, p.cols, p.compression, backend, true, signal);
          finishReport(c, original ? relativeFrobeniusError(original, c.dense!) : c.relativeError, removed);
          return c.dense!;
        },
      });
    }

    // --- metadata
    const recipeJson = JSON.stringify({ ...recipe, input: provenance.input.path, output: { ...output, format } });
    const ourMeta: Record<string, string> = {
      [RECIPE_METADATA_KEY]: recipeJson,
      [PROVENANCE_METADATA_KEY]: JSON.stringify(provenance),
      [INPUT_SHA256_METADATA_KEY]: provenance.input.sha256,
    };
    if (Object.keys(factorEntries).length > 0) ourMeta[FACTORIZATION_METADATA_KEY] = factorizationMetadataValue(factorEntries);

    let files: string[];
    const inputs = ckpt.files;
    if (format === 'safetensors') {
      const inMeta: Record<string, string> = {};
      if (ckpt.format === 'safetensors') for (const [k, v] of Object.entries(ckpt.metadata)) if (typeof v === 'string') inMeta[k] = v;
      if (!factorized) delete inMeta[FACTORIZATION_METADATA_KEY];
      const res = await writeSafetensors(output.path, outTensors as TensorSource[], {
        inputs, metadata: { ...inMeta, ...ourMeta }, maxShardBytes: output.maxShardBytes, signal,
      });
      files = res.files;
    } else if (format === 'gguf') {
      const kv = ckpt.format === 'gguf' ? (ckpt as GgufCheckpoint).gguf.kv : undefined;
      const extraKv: Record<string, GgufValue | string> = { ...ourMeta };
      const res = await writeGguf(output.path, outTensors.map((o): GgufTensorSource => ({ name: o.name, shape: o.shape, type: o.dtype, data: o.data })), {
        inputs, kv, extraKv, signal,
      });
      for (const f of res.fallbacks) warnings.push(`${f.name}: stored as ${f.stored} instead of ${f.requested} (${f.reason})`);
      if (ckpt.format !== 'gguf') warnings.push('GGUF output from a non-GGUF input: tensor names and architecture keys are kept as they are (llama.cpp will not load it; our readers will)');
      files = [res.file];
    } else {
      if (ckpt.format !== 'onnx') {
        throw new CheckpointError(output.path, `ONNX output rewrites an ONNX model's initializers, so the input must be ONNX too (got ${ckpt.format}); write safetensors or GGUF instead`);
      }
      if (output.dtype) warnings.push(`ONNX output keeps every initializer's own dtype; dtype ${output.dtype} was not applied`);
      const replacements = await buildOnnxReplacements(ordered, reports, factorized, backend, signal, progress);
      const { [FACTORIZATION_METADATA_KEY]: _factorization, ...onnxMeta } = ourMeta;
      const res = await writeOnnx(ckpt.path, output.path, { replacements, metadata: onnxMeta, signal });
      for (const r of res.replacements) if (r.keptOriginal) warnings.push(`${r.name}: some consumers still read the original initializer (kept unchanged next to its factors)`);
      files = res.files;
    }

    // --- results
    const tensors = ordered.map((p) => reports.get(p.entry.name)!).filter(Boolean);
    const originalParams = ckpt.tensors.reduce((a, t) => a + t.params, 0);
    const totalParams = originalParams + tensors.reduce((a, r) => a + (r.params - r.denseParams), 0);
    const target = files.find((f) => f.endsWith('.index.json')) ?? files[0];
    const totals: ApplyTotals = { originalParams, totalParams, ratio: originalParams > 0 ? totalParams / originalParams : 1, out: target };
    const result: ApplyResult = { tensors, totals, format, files, provenance, ...(residual ? { residual } : {}), ...(budget ? { budget } : {}), warnings };

    if (opts.sidecar !== false) {
      const sidecar = `${target}.recipe.json`;
      const doc = {
        tool: TOOL_NAME,
        recipe: JSON.parse(recipeJson),
        provenance,
        output: { format, files: files.map((f) => nodePath.basename(f)), factorized },
        results: { tensors, totals },
        ...(budget ? { budget: { target: budget.target, totalParams: budget.totalParams, totalError: budget.totalError, choices: budget.choices } } : {}),
        warnings,
      };
      await withAtomicOutput(sidecar, inputs, async (out) => { await out.write(Buffer.from(JSON.stringify(doc, null, 2) + '\n', 'utf8')); }, { signal });
      result.sidecar = sidecar;
      result.files = [...files, sidecar];
    }
    return result;
  } finally {
    await ckpt.close();
    if (ownBackend) await backend.dispose();
  }
}

/** The factorization (and so the factor shapes) a compression will produce, when it is knowable without the data. */
function predictFactorization(p: TensorPlan): FactorizedTensor | undefined {
  const c = p.compression!;
  if (c.method === 'svd') {
    if (c.rank === undefined) return undefined;
    return lowRankFactorization(p.entry.name, p.rows, p.cols, Math.min(c.rank, p.rows, p.cols));
  }
  if (c.error !== undefined || c.chi === undefined) return undefined;
  let plan;
  try {
    plan = resolveSitePlan(p.rows, p.cols, { sites: c.outFactors ? undefined : (c.sites ?? 2), outFactors: c.outFactors, inFactors: c.inFactors });
  } catch (e) {
    throw new CheckpointError('(recipe)', `${c.source}: ${(e as Error).message}`, { tensor: p.entry.name });
  }
  const dims = bondDimensionsForChi(plan.outFactors, plan.inFactors, c.chi);
  return mpoFactorization(p.entry.name, p.rows, p.cols, plan.outFactors, plan.inFactors, dims);
}

function checkShapes(name: string, got: FactorizedTensor, planned: FactorizedTensor): void {
  const a = JSON.stringify(factorShapes(got)), b = JSON.stringify(factorShapes(planned));
  if (a !== b) throw new CheckpointError('(output)', `internal: the factors have shapes ${a}, the header declared ${b}`, { tensor: name });
}
