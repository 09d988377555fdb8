import * as nodePath from 'node:path';
import { applyRecipe, type ApplyOptions } from '../../core/surgery/apply';
import { loadRecipe, RecipeError, validateRecipe, type Recipe } from '../../core/surgery/recipe';
import { applyResultJson, formatApplyResult } from '../../core/surgery/report';
import { parse, UsageError, type CliCommand, type CliIO } from '../args';

const USAGE = 'tensor-scalpel apply <recipe.json> [--input FILE] [--out FILE] [--backend auto|native|portable] [--json]';

/** Options every surgery command shares. */
export const SURGERY_OPTIONS = {
  backend: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export function backendOpt(v: string | undefined): ApplyOptions['backendPreference'] {
  const b = v ?? 'auto';
  if (b !== 'auto' && b !== 'native' && b !== 'portable') throw new UsageError(`--backend expects auto, native or portable, got "${b}"`);
  return b;
}

/**
 * Validates and applies a recipe, printing the JSON document (--json) or the table. Shared by
 * compress / ablate / inject, which build their recipe from flags. Recipe problems become usage
 * errors (exit code 2) with the JSON path of the problem.
 */
export async function runRecipe(recipe: Recipe, flags: { json?: boolean; backend?: string; input?: string; output?: string }, io: CliIO): Promise<number> {
  let checked: Recipe;
  try {
    checked = validateRecipe(recipe);
  } catch (e) {
    if (e instanceof RecipeError) throw new UsageError(e.message);
    throw e;
  }
  try {
    const result = await applyRecipe(checked, {
      backendPreference: backendOpt(flags.backend),
      signal: io.signal,
      input: flags.input,
      output: flags.output,
      onProgress: (p) => { if (p.phase !== 'write' || p.index % 8 === 0 || p.index === p.count - 1) io.progress(`[${p.phase} ${p.index + 1}/${p.count}] ${p.message}`); },
    });
    io.out(flags.json ? JSON.stringify(applyResultJson(result), null, 2) : formatApplyResult(result));
    return 0;
  } catch (e) {
    if (e instanceof RecipeError) throw new UsageError(e.message);
    throw e;
  }
}

/** `tensor-scalpel apply`: runs a recipe file (schemas/recipe.schema.json). Paths in it are relative to its folder. */
export const applyCommand: CliCommand = {
  name: 'apply',
  summary: 'Apply a surgery recipe (compress, budget, ablate, inject) and write the result with provenance',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { ...SURGERY_OPTIONS, input: { type: 'string' }, out: { type: 'string' } }, USAGE);
    if (positionals.length !== 1) throw new UsageError(`expected one recipe file\nusage: ${USAGE}`);
    let recipe: Recipe;
    try {
      recipe = await loadRecipe(positionals[0]);
    } catch (e) {
      if (e instanceof RecipeError) throw new UsageError(e.message);
      throw e;
    }
    return runRecipe(recipe, {
      json: values.json, backend: values.backend,
      input: values.input ? nodePath.resolve(values.input) : undefined,
      output: values.out ? nodePath.resolve(values.out) : undefined,
    }, io);
  },
};
