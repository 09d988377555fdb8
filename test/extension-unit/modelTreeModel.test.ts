import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { open, summarize } from '../../src/core/checkpoint';
import { byteRange, compactCount, countMatches, groupTensors, matchesFilter, tensorDescription } from '../../src/extension/modelTreeModel';

const fixtures = path.resolve(__dirname, '../../../shared/fixtures');

async function summaryOf(rel: string) {
  const ckpt = await open(path.join(fixtures, rel));
  try { return summarize(ckpt); } finally { await ckpt.close(); }
}

test('matchesFilter: case-insensitive substrings, every word must occur', () => {
  assert.ok(matchesFilter('blk.3.attn_q.weight', 'ATTN_Q'));
  assert.ok(matchesFilter('blk.3.attn_q.weight', 'blk.3 attn'));
  assert.ok(!matchesFilter('blk.3.attn_q.weight', 'blk.3 ffn'));
  assert.ok(matchesFilter('anything', '   '));
});

test('groupTensors on pico.safetensors: embedding, block 0..3, head in order; no tensor lost', async () => {
  const s = await summaryOf('pico/pico.safetensors');
  const groups = groupTensors(s.tensors, '');
  const labels = groups.map((g) => g.label);
  assert.deepEqual(labels.filter((l) => l.startsWith('block')), ['block 0', 'block 1', 'block 2', 'block 3']); // n_layer 4
  assert.equal(labels[0], 'embedding');
  assert.ok(labels.indexOf('head') > labels.indexOf('block 3'));
  assert.equal(groups.reduce((a, g) => a + g.tensors.length, 0), s.tensors.length);
  assert.equal(groups.reduce((a, g) => a + g.params, 0), s.totalParams);
  // Within a group, tensors keep file order.
  for (const g of groups) assert.deepEqual(g.tensors, s.tensors.filter((t) => t.group === g.label));
});

test('groupTensors with a filter keeps only matching tensors and drops empty groups', async () => {
  const s = await summaryOf('real/stories260K.gguf');
  const groups = groupTensors(s.tensors, 'attn_q');
  const names = groups.flatMap((g) => g.tensors.map((t) => t.name));
  assert.deepEqual(names, s.tensors.map((t) => t.name).filter((n) => /attn_q/i.test(n)));
  assert.equal(names.length, 5); // one per layer, 5 layers
  assert.ok(groups.every((g) => g.label.startsWith('block ')));
  assert.deepEqual(countMatches([s], 'attn_q'), { shown: 5, total: 48 });
  assert.deepEqual(groupTensors(s.tensors, 'no such tensor'), []);
});

test('labels: compact counts, tensor descriptions, byte ranges', () => {
  assert.equal(compactCount(999), '999');
  assert.equal(compactCount(292_800), '293K');
  assert.equal(compactCount(818_048), '818K');
  assert.equal(compactCount(6_738_415_616), '6.74B');
  assert.equal(compactCount(12_000_000), '12M');
  assert.equal(tensorDescription({ shape: [512, 64], dtype: 'F32', params: 32768 }), '[512, 64] F32 · 32,768');
  assert.equal(byteRange(1024, 1024), 'bytes 1,024 – 2,047 (1,024 bytes)');
  assert.equal(byteRange(10, 0), 'byte 10 (empty)');
});
