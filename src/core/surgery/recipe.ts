/**
 * Surgery recipes: the JSON document that says what to do to a checkpoint — which tensors to compress
 * (MPO / tensor-train or low-rank SVD, with a bond dimension, a rank, an error target or a global
 * parameter budget), which directions to ablate, which rank-1 "virus" to inject — and where to write
 * the result. The schema is schemas/recipe.schema.json (JSON Schema draft 2020-12); `validateRecipe`
 * checks exactly that schema by hand so that every message names the place in the document, e.g.
 *   recipe.compress[1].chi: expected a positive integer, got -3
 * plus the few rules a schema cannot say well (an svd rule may not give chi, ...).
 *
 * Order of operations on a tensor (apply.ts): inject, then ablate, then compress — the edits act on
 * the dense weights, compression decides how the edited weights are stored.
 *
 * Relative paths inside a recipe (input, output.path, ablate[].direction) are resolved against the
 * folder of the recipe file when the recipe comes from a file (`loadRecipe`), else against the
 * caller's base folder.
 */
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';

export const RECIPE_VERSION = 1;

export type OutputFormat = 'safetensors' | 'gguf' | 'onnx';
export type CompressionMethod = 'mpo' | 'svd';

export interface RecipeOutput {
  path: string;
  /** Default: from the file name (.gguf, .onnx, else safetensors). */
  format?: OutputFormat;
  /**
   * Storage type of the float tensors of two or more dimensions that the recipe changes or converts:
   * safetensors F32 | F16 | BF16; GGUF F32 | F16 | BF16 | Q8_0; ONNX F32 | F16. Default: the input's
   * dtype where the output format can store it, else F32. Untouched tensors keep their stored bytes
   * when input and output formats match and no dtype is given.
   */
  dtype?: string;
  /** Store compressed tensors as their factors (`<name>.lowrank.a/b`, `<name>.mpo.core.<k>`) instead of dense. */
  factorized?: boolean;
  /** safetensors only: shard the output at this many tensor bytes. */
  maxShardBytes?: number;
}

/** A tensor selection: one glob (`*` any run, `?` one character) or a list of names / globs. Default: the 2-D matrices of the transformer blocks. */
export type TensorSelector = string | string[];

export interface CompressRule {
  tensors?: TensorSelector;
  method: CompressionMethod;
  /** MPO: the maximum bond dimension of every bond. */
  chi?: number;
  /** SVD: the rank kept. */
  rank?: number;
  /** Target relative Frobenius error ||W - W~||_F / ||W||_F (MPO: split over the bonds, see analysis/mpo.ts). */
  error?: number;
  /** MPO: number of sites (automatic factorisation, default 2). */
  sites?: number;
  /** MPO: explicit site factors (both or neither). */
  outFactors?: number[];
  inFactors?: number[];
}

export interface BudgetSpec {
  /** Total parameter count the budgeted tensors may keep (after compression). */
  params?: number;
  /** The fraction of the budgeted tensors' parameters kept, 0 < ratio <= 1 (0.25 = 4x fewer). */
  ratio?: number;
  method: CompressionMethod;
  /** Each tensor keeps at least this fraction of its full rank (svd) or its largest bond dimension (mpo). Default 0. */
  floor?: number;
  /** Which tensors the budget spreads over (default: the 2-D block matrices not matched by a compress rule). */
  tensors?: TensorSelector;
  /** MPO sites for the budget's tensors (default 2). */
  sites?: number;
}

export interface RemoveTopRule {
  /** Remove the k largest singular directions: W <- W - sum_{i<=k} s_i u_i v_i^T. */
  removeTop: number;
  /** Default: the 2-D matrices of the transformer blocks. */
  tensors?: TensorSelector;
}

export interface DirectionRule {
  /** A file holding the direction r (npy, npz, safetensors, pt); 1-D [d] or [1, d] / [d, 1]. */
  direction: string;
  /** Which tensor of a multi-tensor file. */
  key?: string;
  /** Tensors to orthogonalise against r; default: the detected residual-stream writers. */
  writers?: string[];
}

export type AblateRule = RemoveTopRule | DirectionRule;

export interface InjectRule {
  tensor: string;
  /** s in W <- W + s u v^T. */
  strength: number;
  /** Seed for random unit u, v (default 0). */
  seed?: number;
  /** Explicit u (length rows) and v (length cols); normalised before use. */
  u?: number[];
  v?: number[];
}

export interface Recipe {
  $schema?: string;
  version: 1;
  input?: string;
  output?: RecipeOutput;
  compress?: CompressRule[];
  budget?: BudgetSpec;
  ablate?: AblateRule[];
  inject?: InjectRule[];
}

/** Thrown for recipes that do not match the schema; `path` is the JSON path of the first problem. */
export class RecipeError extends Error {
  constructor(readonly path: string, message: string, readonly source?: string) {
    super(`${source ? `${source}: ` : ''}${path}: ${message}`);
    this.name = 'RecipeError';
  }
}

/** The property names the schema allows at each level (kept in step with schemas/recipe.schema.json; a test checks it). */
export const RECIPE_KEYS = {
  recipe: ['$schema', 'version', 'input', 'output', 'compress', 'budget', 'ablate', 'inject'],
  output: ['path', 'format', 'dtype', 'factorized', 'maxShardBytes'],
  compress: ['tensors', 'method', 'chi', 'rank', 'error', 'sites', 'outFactors', 'inFactors'],
  budget: ['params', 'ratio', 'method', 'floor', 'tensors', 'sites'],
  removeTop: ['removeTop', 'tensors'],
  direction: ['direction', 'key', 'writers'],
  inject: ['tensor', 'strength', 'seed', 'u', 'v'],
} as const;

export const OUTPUT_DTYPES: Record<OutputFormat, readonly string[]> = {
  safetensors: ['F32', 'F16', 'BF16'],
  gguf: ['F32', 'F16', 'BF16', 'Q8_0'],
  onnx: ['F32', 'F16'],
};

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}

class Checker {
  constructor(private readonly source?: string) {}
  fail(path: string, message: string): never {
    throw new RecipeError(path, message, this.source);
  }
  object(v: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, `expected an object, got ${describe(v)}`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) this.fail(`${path}.${k}`, `unknown property (allowed: ${keys.join(', ')})`);
    }
    return o;
  }
  string(v: unknown, path: string): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(path, `expected a non-empty string, got ${describe(v)}`);
    return v;
  }
  positiveInt(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) this.fail(path, `expected a positive integer, got ${describe(v)}`);
    return v;
  }
  nonNegativeInt(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(path, `expected a non-negative integer, got ${describe(v)}`);
    return v;
  }
  number(v: unknown, path: string, range: { gt?: number; ge?: number; le?: number; lt?: number } = {}): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `expected a finite number, got ${describe(v)}`);
    const parts: string[] = [];
    if (range.gt !== undefined) parts.push(`> ${range.gt}`);
    if (range.ge !== undefined) parts.push(`>= ${range.ge}`);
    if (range.lt !== undefined) parts.push(`< ${range.lt}`);
    if (range.le !== undefined) parts.push(`<= ${range.le}`);
    const ok = (range.gt === undefined || v > range.gt) && (range.ge === undefined || v >= range.ge)
      && (range.lt === undefined || v < range.lt) && (range.le === undefined || v <= range.le);
    if (!ok) this.fail(path, `expected a number ${parts.join(' and ')}, got ${describe(v)}`);
    return v;
  }
  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, `expected true or false, got ${describe(v)}`);
    return v;
  }
  oneOf<T extends string>(v: unknown, path: string, options: readonly T[]): T {
    if (typeof v !== 'string' || !options.includes(v as T)) this.fail(path, `expected one of ${options.map((o) => JSON.stringify(o)).join(', ')}, got ${describe(v)}`);
    return v as T;
  }
  array(v: unknown, path: string, minItems = 0): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected an array, got ${describe(v)}`);
    if (v.length < minItems) this.fail(path, `expected at least ${minItems} item${minItems === 1 ? '' : 's'}, got ${v.length}`);
    return v;
  }
  selector(v: unknown, path: string): TensorSelector {
    if (typeof v === 'string') return this.string(v, path);
    const a = this.array(v, path, 1);
    return a.map((x, i) => this.string(x, `${path}[${i}]`));
  }
  positiveIntList(v: unknown, path: string): number[] {
    return this.array(v, path, 1).map((x, i) => this.positiveInt(x, `${path}[${i}]`));
  }
  numberList(v: unknown, path: string): number[] {
    return this.array(v, path, 1).map((x, i) => this.number(x, `${path}[${i}]`));
  }
}

/**
 * Checks a parsed JSON value against the recipe schema and returns it typed. Throws RecipeError with
 * the JSON path of the first problem. `source` (a file name) prefixes the messages.
 */
export function validateRecipe(value: unknown, source?: string): Recipe {
  const c = new Checker(source);
  const r = c.object(value, 'recipe', RECIPE_KEYS.recipe);
  if (r.version !== RECIPE_VERSION) c.fail('recipe.version', `expected ${RECIPE_VERSION}, got ${describe(r.version)}`);
  const recipe: Recipe = { version: 1 };
  if (r.$schema !== undefined) recipe.$schema = c.string(r.$schema, 'recipe.$schema');
  if (r.input !== undefined) recipe.input = c.string(r.input, 'recipe.input');

  if (r.output !== undefined) {
    const o = c.object(r.output, 'recipe.output', RECIPE_KEYS.output);
    if (o.path === undefined) c.fail('recipe.output.path', 'required');
    const out: RecipeOutput = { path: c.string(o.path, 'recipe.output.path') };
    if (o.format !== undefined) out.format = c.oneOf(o.format, 'recipe.output.format', ['safetensors', 'gguf', 'onnx'] as const);
    if (o.dtype !== undefined) {
      const all = ['F32', 'F16', 'BF16', 'Q8_0'] as const;
      out.dtype = c.oneOf(o.dtype, 'recipe.output.dtype', all);
      const fmt = out.format ?? formatFromPath(out.path);
      if (!OUTPUT_DTYPES[fmt].includes(out.dtype)) c.fail('recipe.output.dtype', `${fmt} output stores ${OUTPUT_DTYPES[fmt].join(', ')}, not ${out.dtype}`);
    }
    if (o.factorized !== undefined) out.factorized = c.boolean(o.factorized, 'recipe.output.factorized');
    if (o.maxShardBytes !== undefined) {
      out.maxShardBytes = c.positiveInt(o.maxShardBytes, 'recipe.output.maxShardBytes');
      if ((out.format ?? formatFromPath(out.path)) !== 'safetensors') c.fail('recipe.output.maxShardBytes', 'sharding is only for safetensors output');
    }
    recipe.output = out;
  }

  if (r.compress !== undefined) {
    recipe.compress = c.array(r.compress, 'recipe.compress').map((x, i) => {
      const p = `recipe.compress[${i}]`;
      const o = c.object(x, p, RECIPE_KEYS.compress);
      if (o.method === undefined) c.fail(`${p}.method`, 'required ("mpo" or "svd")');
      const rule: CompressRule = { method: c.oneOf(o.method, `${p}.method`, ['mpo', 'svd'] as const) };
      if (o.tensors !== undefined) rule.tensors = c.selector(o.tensors, `${p}.tensors`);
      if (o.chi !== undefined) rule.chi = c.positiveInt(o.chi, `${p}.chi`);
      if (o.rank !== undefined) rule.rank = c.positiveInt(o.rank, `${p}.rank`);
      if (o.error !== undefined) rule.error = c.number(o.error, `${p}.error`, { gt: 0, lt: 1 });
      if (o.sites !== undefined) rule.sites = c.positiveInt(o.sites, `${p}.sites`);
      if (o.outFactors !== undefined) rule.outFactors = c.positiveIntList(o.outFactors, `${p}.outFactors`);
      if (o.inFactors !== undefined) rule.inFactors = c.positiveIntList(o.inFactors, `${p}.inFactors`);
      if (rule.method === 'svd') {
        for (const k of ['chi', 'sites', 'outFactors', 'inFactors'] as const) {
          if (rule[k] !== undefined) c.fail(`${p}.${k}`, 'only for method "mpo" (an svd rule takes rank or error)');
        }
        if ((rule.rank === undefined) === (rule.error === undefined)) c.fail(p, 'an svd rule needs exactly one of rank, error');
      } else {
        if (rule.rank !== undefined) c.fail(`${p}.rank`, 'only for method "svd" (an mpo rule takes chi and/or error)');
        if (rule.chi === undefined && rule.error === undefined) c.fail(p, 'an mpo rule needs chi or error (or both)');
        if ((rule.outFactors === undefined) !== (rule.inFactors === undefined)) c.fail(p, 'outFactors and inFactors go together');
        if (rule.outFactors && rule.sites !== undefined) c.fail(`${p}.sites`, 'give either sites or outFactors/inFactors, not both');
        if (rule.outFactors && rule.inFactors && rule.outFactors.length !== rule.inFactors.length) {
          c.fail(`${p}.inFactors`, `has ${rule.inFactors.length} sites but outFactors has ${rule.outFactors.length}; an MPO needs the same number on both sides`);
        }
      }
      return rule;
    });
  }

  if (r.budget !== undefined) {
    const p = 'recipe.budget';
    const o = c.object(r.budget, p, RECIPE_KEYS.budget);
    if (o.method === undefined) c.fail(`${p}.method`, 'required ("mpo" or "svd")');
    const b: BudgetSpec = { method: c.oneOf(o.method, `${p}.method`, ['mpo', 'svd'] as const) };
    if (o.params !== undefined) b.params = c.nonNegativeInt(o.params, `${p}.params`);
    if (o.ratio !== undefined) b.ratio = c.number(o.ratio, `${p}.ratio`, { gt: 0, le: 1 });
    if ((b.params === undefined) === (b.ratio === undefined)) c.fail(p, 'needs exactly one of params, ratio');
    if (o.floor !== undefined) b.floor = c.number(o.floor, `${p}.floor`, { ge: 0, le: 1 });
    if (o.tensors !== undefined) b.tensors = c.selector(o.tensors, `${p}.tensors`);
    if (o.sites !== undefined) {
      b.sites = c.positiveInt(o.sites, `${p}.sites`);
      if (b.method !== 'mpo') c.fail(`${p}.sites`, 'only for method "mpo"');
    }
    recipe.budget = b;
  }

  if (r.ablate !== undefined) {
    recipe.ablate = c.array(r.ablate, 'recipe.ablate').map((x, i) => {
      const p = `recipe.ablate[${i}]`;
      if (x !== null && typeof x === 'object' && !Array.isArray(x) && 'removeTop' in x) {
        const o = c.object(x, p, RECIPE_KEYS.removeTop);
        const rule: RemoveTopRule = { removeTop: c.positiveInt(o.removeTop, `${p}.removeTop`) };
        if (o.tensors !== undefined) rule.tensors = c.selector(o.tensors, `${p}.tensors`);
        return rule;
      }
      if (x !== null && typeof x === 'object' && !Array.isArray(x) && 'direction' in x) {
        const o = c.object(x, p, RECIPE_KEYS.direction);
        const rule: DirectionRule = { direction: c.string(o.direction, `${p}.direction`) };
        if (o.key !== undefined) rule.key = c.string(o.key, `${p}.key`);
        if (o.writers !== undefined) rule.writers = c.array(o.writers, `${p}.writers`, 1).map((w, j) => c.string(w, `${p}.writers[${j}]`));
        return rule;
      }
      return c.fail(p, `expected {"removeTop": k, "tensors": ...} or {"direction": file, ...}, got ${describe(x)}`);
    });
  }

  if (r.inject !== undefined) {
    recipe.inject = c.array(r.inject, 'recipe.inject').map((x, i) => {
      const p = `recipe.inject[${i}]`;
      const o = c.object(x, p, RECIPE_KEYS.inject);
      if (o.tensor === undefined) c.fail(`${p}.tensor`, 'required');
      if (o.strength === undefined) c.fail(`${p}.strength`, 'required');
      const rule: InjectRule = { tensor: c.string(o.tensor, `${p}.tensor`), strength: c.number(o.strength, `${p}.strength`) };
      if (o.seed !== undefined) rule.seed = c.nonNegativeInt(o.seed, `${p}.seed`);
      if (o.u !== undefined) rule.u = c.numberList(o.u, `${p}.u`);
      if (o.v !== undefined) rule.v = c.numberList(o.v, `${p}.v`);
      if ((rule.u === undefined) !== (rule.v === undefined)) c.fail(p, 'u and v go together (or give neither for seeded random vectors)');
      return rule;
    });
  }

  if (!recipe.compress?.length && !recipe.budget && !recipe.ablate?.length && !recipe.inject?.length && !recipe.output) {
    c.fail('recipe', 'does nothing: give compress, budget, ablate, inject or at least an output (a plain conversion)');
  }
  return recipe;
}

/** safetensors unless the name ends in .gguf or .onnx. */
export function formatFromPath(p: string): OutputFormat {
  const lower = p.toLowerCase();
  if (lower.endsWith('.gguf')) return 'gguf';
  if (lower.endsWith('.onnx')) return 'onnx';
  return 'safetensors';
}

/** Reads, parses and validates a recipe file; relative paths inside are made absolute against its folder. */
export async function loadRecipe(file: string): Promise<Recipe> {
  const abs = nodePath.resolve(file);
  let text: string;
  try {
    text = await fsp.readFile(abs, 'utf8');
  } catch (e) {
    throw new RecipeError('recipe', `cannot read the recipe file (${(e as Error).message})`, abs);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RecipeError('recipe', `not valid JSON (${(e as Error).message})`, abs);
  }
  return resolveRecipePaths(validateRecipe(json, abs), nodePath.dirname(abs));
}

/** A copy with input, output.path and direction files made absolute against `baseDir`. */
export function resolveRecipePaths(recipe: Recipe, baseDir: string): Recipe {
  const abs = (p: string) => nodePath.resolve(baseDir, p);
  return {
    ...recipe,
    ...(recipe.input !== undefined ? { input: abs(recipe.input) } : {}),
    ...(recipe.output ? { output: { ...recipe.output, path: abs(recipe.output.path) } } : {}),
    ...(recipe.ablate ? { ablate: recipe.ablate.map((a) => ('direction' in a ? { ...a, direction: abs(a.direction) } : a)) } : {}),
  };
}

/** Glob to RegExp: `*` any run of characters, `?` one character, everything else literal; whole name. */
export function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

/** A predicate for a selector (a glob, or a list of names / globs). */
export function selectorMatcher(sel: TensorSelector): (name: string) => boolean {
  const list = (Array.isArray(sel) ? sel : [sel]).map(globToRegExp);
  return (name) => list.some((re) => re.test(name));
}

/** Whether a selector entry is a plain name (no wildcard): such entries must exist in the checkpoint. */
export function isPlainName(s: string): boolean {
  return !/[*?]/.test(s);
}
