import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { classifyTensor } from '../../webview/shared/classify';
import { mapLayout, sortMapRows } from '../../webview/overview/mapLayout';

test('GPT-2 (HF) names: kind and block index', () => {
  assert.deepEqual(classifyTensor('h.3.attn.c_attn.weight'), { kind: 'qkv', depth: 3 });
  assert.deepEqual(classifyTensor('h.0.attn.c_proj.weight'), { kind: 'o', depth: 0 });
  assert.deepEqual(classifyTensor('h.11.mlp.c_fc.weight'), { kind: 'up', depth: 11 });
  assert.deepEqual(classifyTensor('transformer.h.2.mlp.c_proj.weight'), { kind: 'down', depth: 2 });
  assert.deepEqual(classifyTensor('wte.weight'), { kind: 'embedding', depth: null });
  assert.deepEqual(classifyTensor('transformer.wpe.weight'), { kind: 'position', depth: null });
  assert.deepEqual(classifyTensor('lm_head.weight'), { kind: 'head', depth: null });
});

test('Llama (HF) names', () => {
  for (const [n, kind] of [['q_proj', 'q'], ['k_proj', 'k'], ['v_proj', 'v'], ['o_proj', 'o']] as const) {
    assert.deepEqual(classifyTensor(`model.layers.7.self_attn.${n}.weight`), { kind, depth: 7 });
  }
  for (const [n, kind] of [['gate_proj', 'gate'], ['up_proj', 'up'], ['down_proj', 'down']] as const) {
    assert.deepEqual(classifyTensor(`model.layers.12.mlp.${n}.weight`), { kind, depth: 12 });
  }
  assert.deepEqual(classifyTensor('model.embed_tokens.weight'), { kind: 'embedding', depth: null });
});

test('GGUF names', () => {
  assert.deepEqual(classifyTensor('blk.4.attn_q.weight'), { kind: 'q', depth: 4 });
  assert.deepEqual(classifyTensor('blk.4.attn_output.weight'), { kind: 'o', depth: 4 });
  assert.deepEqual(classifyTensor('blk.0.ffn_gate.weight'), { kind: 'gate', depth: 0 });
  assert.deepEqual(classifyTensor('blk.0.ffn_down.weight'), { kind: 'down', depth: 0 });
  assert.deepEqual(classifyTensor('blk.1.attn_qkv.weight'), { kind: 'qkv', depth: 1 });
  assert.deepEqual(classifyTensor('token_embd.weight'), { kind: 'embedding', depth: null });
  assert.deepEqual(classifyTensor('output.weight'), { kind: 'head', depth: null });
  assert.deepEqual(classifyTensor('blk.2.attn_norm.weight').depth, 2);
});

test('map layout of PicoGPT: one cell per matrix, kinds x depth, no two cells in one slot', () => {
  const ref = JSON.parse(readFileSync(join(__dirname, '../../../shared/reference/pico.spectra.json'), 'utf8')) as { tensors: Array<{ name: string }> };
  const names = ref.tensors.map((t) => t.name);
  const l = mapLayout(names);
  assert.equal(l.cells.length, names.length);
  assert.deepEqual(l.rows, ['embedding', 'position', 'qkv', 'o', 'up', 'down']);
  assert.deepEqual(l.columns, [null, 0, 1, 2, 3]);
  const slots = new Set(l.cells.map((c) => `${c.row},${c.col}`));
  assert.equal(slots.size, l.cells.length);
  const blockCells = l.cells.filter((c) => c.depth !== null).length;
  assert.equal(blockCells, names.filter((n) => /^h\.\d+\./.test(n)).length);
});

test('map layout gives a second row when two tensors share a kind and depth', () => {
  const l = mapLayout(['blk.0.foo.weight', 'blk.0.bar.weight', 'blk.1.foo.weight']);
  assert.deepEqual(l.rows, ['other', 'other']);
  assert.equal(new Set(l.cells.map((c) => `${c.row},${c.col}`)).size, 3);
});

test('map table sort: by metric with nulls last, ties by name', () => {
  const mk = (name: string, alpha: number | null) => ({ name, matrix: [2, 2] as [number, number], mode: 'exact' as const, normalizedEntropy: 0.5, effectiveRank: 1, rank: 2, stableRank: 1, alpha, outliers: 0, spectralNorm: 1, frobeniusNorm: 1 });
  const rows = [mk('b', 3), mk('a', null), mk('c', 2)];
  assert.deepEqual(sortMapRows(rows, { key: 'alpha', dir: 'asc' }).map((r) => r.name), ['c', 'b', 'a']);
  assert.deepEqual(sortMapRows(rows, { key: 'alpha', dir: 'desc' }).map((r) => r.name), ['b', 'c', 'a']);
});
