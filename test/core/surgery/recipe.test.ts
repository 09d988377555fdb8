import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { validateRecipe, loadRecipe, RecipeError, RECIPE_KEYS, selectorMatcher, formatFromPath } from '../../../src/core/surgery/recipe';

const SCHEMA = path.resolve(__dirname, '../../../schemas/recipe.schema.json');

function rejects(value: unknown, message: string) {
  assert.throws(() => validateRecipe(value), (e: unknown) => {
    assert.ok(e instanceof RecipeError, `expected RecipeError, got ${String(e)}`);
    assert.equal((e as Error).message, message);
    return true;
  });
}

test('validateRecipe accepts a full recipe and returns it typed', () => {
  const r = validateRecipe({
    $schema: './schemas/recipe.schema.json',
    version: 1,
    input: 'pico.safetensors',
    output: { path: 'out.gguf', dtype: 'Q8_0', factorized: true },
    compress: [{ tensors: 'h.*.attn.c_attn.weight', method: 'mpo', chi: 8, sites: 2 }, { tensors: ['a', 'b*'], method: 'svd', error: 0.1 }],
    budget: { ratio: 0.25, method: 'svd', floor: 0.05 },
    ablate: [{ removeTop: 1, tensors: 'h.0.mlp.c_fc.weight' }, { direction: 'r.npy', key: 'refusal', writers: ['x'] }],
    inject: [{ tensor: 'h.0.mlp.c_fc.weight', strength: 100, seed: 3 }],
  });
  assert.equal(r.compress?.length, 2);
  assert.equal(r.compress?.[0].chi, 8);
  assert.equal(r.output?.dtype, 'Q8_0');
  assert.deepEqual(r.ablate?.[0], { removeTop: 1, tensors: 'h.0.mlp.c_fc.weight' });
});

test('validateRecipe: every message names the JSON path and what was expected', () => {
  rejects({ version: 1, compress: [{ method: 'mpo', chi: 4 }, { method: 'mpo', chi: -3 }] }, 'recipe.compress[1].chi: expected a positive integer, got -3');
  rejects({ version: 2 }, 'recipe.version: expected 1, got 2');
  rejects({ version: 1, compres: [] }, 'recipe.compres: unknown property (allowed: $schema, version, input, output, compress, budget, ablate, inject)');
  rejects({ version: 1, compress: [{ method: 'tt', chi: 4 }] }, 'recipe.compress[0].method: expected one of "mpo", "svd", got "tt"');
  rejects({ version: 1, compress: [{ method: 'svd', chi: 4 }] }, 'recipe.compress[0].chi: only for method "mpo" (an svd rule takes rank or error)');
  rejects({ version: 1, compress: [{ method: 'svd' }] }, 'recipe.compress[0]: an svd rule needs exactly one of rank, error');
  rejects({ version: 1, compress: [{ method: 'mpo' }] }, 'recipe.compress[0]: an mpo rule needs chi or error (or both)');
  rejects({ version: 1, compress: [{ method: 'mpo', chi: 2, error: 1.5 }] }, 'recipe.compress[0].error: expected a number > 0 and < 1, got 1.5');
  rejects({ version: 1, compress: [{ method: 'mpo', chi: 2, outFactors: [8, 16], inFactors: [128] }] }, 'recipe.compress[0].inFactors: has 1 sites but outFactors has 2; an MPO needs the same number on both sides');
  rejects({ version: 1, compress: [{ method: 'mpo', chi: 2, tensors: [] }] }, 'recipe.compress[0].tensors: expected at least 1 item, got 0');
  rejects({ version: 1, budget: { method: 'svd' } }, 'recipe.budget: needs exactly one of params, ratio');
  rejects({ version: 1, budget: { method: 'svd', ratio: 4 } }, 'recipe.budget.ratio: expected a number > 0 and <= 1, got 4');
  rejects({ version: 1, ablate: [{ removeTop: 0 }] }, 'recipe.ablate[0].removeTop: expected a positive integer, got 0');
  rejects({ version: 1, ablate: [{ foo: 1 }] }, 'recipe.ablate[0]: expected {"removeTop": k, "tensors": ...} or {"direction": file, ...}, got an object');
  rejects({ version: 1, inject: [{ tensor: 'x' }] }, 'recipe.inject[0].strength: required');
  rejects({ version: 1, inject: [{ tensor: 'x', strength: 1, u: [1] }] }, 'recipe.inject[0]: u and v go together (or give neither for seeded random vectors)');
  rejects({ version: 1, output: { path: 'x.onnx', dtype: 'Q8_0' } }, 'recipe.output.dtype: onnx output stores F32, F16, not Q8_0');
  rejects({ version: 1, output: { path: 'x.gguf', maxShardBytes: 100 } }, 'recipe.output.maxShardBytes: sharding is only for safetensors output');
  rejects({ version: 1 }, 'recipe: does nothing: give compress, budget, ablate, inject or at least an output (a plain conversion)');
  rejects([], 'recipe: expected an object, got an array of 0');
});

test('the schema file and the validator agree on every property name and the required ones', async () => {
  const schema = JSON.parse(await fsp.readFile(SCHEMA, 'utf8'));
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  const keys = (o: { properties: Record<string, unknown> }) => Object.keys(o.properties).sort();
  assert.deepEqual(keys(schema), [...RECIPE_KEYS.recipe].sort());
  assert.deepEqual(keys(schema.$defs.output), [...RECIPE_KEYS.output].sort());
  assert.deepEqual(keys(schema.$defs.compressRule), [...RECIPE_KEYS.compress].sort());
  assert.deepEqual(keys(schema.$defs.budget), [...RECIPE_KEYS.budget].sort());
  assert.deepEqual(keys(schema.$defs.removeTopRule), [...RECIPE_KEYS.removeTop].sort());
  assert.deepEqual(keys(schema.$defs.directionRule), [...RECIPE_KEYS.direction].sort());
  assert.deepEqual(keys(schema.$defs.injectRule), [...RECIPE_KEYS.inject].sort());
  // Every object in the schema closes its property set, as the validator does.
  for (const d of ['output', 'compressRule', 'budget', 'removeTopRule', 'directionRule', 'injectRule']) assert.equal(schema.$defs[d].additionalProperties, false, d);
  // Required properties: the validator reports each as missing.
  rejects({ version: 1, output: {} }, 'recipe.output.path: required');
  assert.deepEqual(schema.$defs.output.required, ['path']);
  rejects({ version: 1, compress: [{ chi: 3 }] }, 'recipe.compress[0].method: required ("mpo" or "svd")');
  assert.deepEqual(schema.$defs.compressRule.required, ['method']);
  assert.deepEqual(schema.$defs.injectRule.required, ['tensor', 'strength']);
});

test('loadRecipe resolves relative paths against the recipe folder and prefixes errors with the file', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'recipe-'));
  try {
    const f = path.join(dir, 'r.json');
    await fsp.writeFile(f, JSON.stringify({ version: 1, input: 'in/model.safetensors', output: { path: 'out.safetensors' }, ablate: [{ direction: 'dirs/r.npy' }] }));
    const r = await loadRecipe(f);
    assert.equal(r.input, path.join(dir, 'in/model.safetensors'));
    assert.equal(r.output?.path, path.join(dir, 'out.safetensors'));
    assert.deepEqual(r.ablate?.[0], { direction: path.join(dir, 'dirs/r.npy') });
    await fsp.writeFile(f, '{"version": 1, "compress": [{"method": "mpo", "chi": -3}]}');
    await assert.rejects(loadRecipe(f), { message: `${f}: recipe.compress[0].chi: expected a positive integer, got -3` });
    await fsp.writeFile(f, '{"version": 1,');
    await assert.rejects(loadRecipe(f), (e: Error) => e instanceof RecipeError && e.message.startsWith(`${f}: recipe: not valid JSON`));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('selectors: globs match whole names, lists mix names and globs; format from the file name', () => {
  const m = selectorMatcher('h.*.mlp.c_fc.weight');
  assert.ok(m('h.0.mlp.c_fc.weight'));
  assert.ok(!m('h.0.mlp.c_fc.weight.bias'));
  assert.ok(!m('xh.0.mlp.c_fc.weight'));
  const l = selectorMatcher(['wte.weight', 'h.?.attn.c_proj.weight']);
  assert.ok(l('wte.weight') && l('h.3.attn.c_proj.weight') && !l('h.10.attn.c_proj.weight'));
  assert.equal(formatFromPath('a.GGUF'), 'gguf');
  assert.equal(formatFromPath('a.onnx'), 'onnx');
  assert.equal(formatFromPath('a.bin'), 'safetensors');
});
