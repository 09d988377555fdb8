import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { open, summarize } from '../../src/core/checkpoint';
import { buildOverviewModel } from '../../src/extension/overviewModel';
import { DEFAULT_SORT, filterTensors, nextSort, sortTensors, summarizeGroups } from '../../webview/overview/table';
import type { OverviewTensor } from '../../src/protocol/messages';

const fixtures = path.resolve(__dirname, '../../../shared/fixtures');

async function tensorsOf(rel: string): Promise<OverviewTensor[]> {
  const ckpt = await open(path.join(fixtures, rel));
  try { return buildOverviewModel(summarize(ckpt)).tensors; } finally { await ckpt.close(); }
}

test('sort by params descending, ties in file order', async () => {
  const rows = await tensorsOf('pico/pico.safetensors');
  const sorted = sortTensors(rows, { key: 'params', dir: 'desc' });
  assert.equal(sorted.length, rows.length);
  for (let i = 1; i < sorted.length; i++) {
    assert.ok(sorted[i - 1].params >= sorted[i].params);
    if (sorted[i - 1].params === sorted[i].params) assert.ok(rows.indexOf(sorted[i - 1]) < rows.indexOf(sorted[i]));
  }
});

test('sort by name is numeric-aware (blk.2 before blk.10) and reversible', () => {
  const mk = (name: string): OverviewTensor => ({ name, shape: [1], dtype: 'F32', params: 1, group: 'other', groupOrder: 0, byteOffset: 0, byteLength: 4, file: 'x' });
  const rows = ['blk.10.w', 'blk.2.w', 'blk.1.w'].map(mk);
  assert.deepEqual(sortTensors(rows, { key: 'name', dir: 'asc' }).map((r) => r.name), ['blk.1.w', 'blk.2.w', 'blk.10.w']);
  assert.deepEqual(sortTensors(rows, { key: 'name', dir: 'desc' }).map((r) => r.name), ['blk.10.w', 'blk.2.w', 'blk.1.w']);
  assert.deepEqual(rows.map((r) => r.name), ['blk.10.w', 'blk.2.w', 'blk.1.w'], 'input untouched');
});

test('default sort by group: embedding, blocks in numeric order, head, other', async () => {
  const rows = await tensorsOf('real/stories260K.gguf');
  const order = sortTensors(rows, DEFAULT_SORT).map((r) => r.groupOrder);
  for (let i = 1; i < order.length; i++) assert.ok(order[i - 1] <= order[i]);
  assert.equal(sortTensors(rows, DEFAULT_SORT)[0].group, 'embedding');
});

test('filter by words and group; groups summary adds up', async () => {
  const rows = await tensorsOf('real/stories260K.gguf');
  const q = filterTensors(rows, 'ATTN_Q');
  assert.deepEqual(q.map((r) => r.name), rows.map((r) => r.name).filter((n) => n.includes('attn_q')));
  const b3 = filterTensors(rows, '', 'block 3');
  assert.ok(b3.length > 0 && b3.every((r) => r.group === 'block 3' && r.name.startsWith('blk.3.')));
  assert.equal(filterTensors(rows, 'attn blk.3').length, filterTensors(b3, 'attn').length);
  const groups = summarizeGroups(rows);
  assert.equal(groups.reduce((a, g) => a + g.tensors, 0), rows.length);
  assert.equal(groups.reduce((a, g) => a + g.params, 0), rows.reduce((a, r) => a + r.params, 0));
  assert.deepEqual(groups.map((g) => g.order), [...groups.map((g) => g.order)].sort((a, b) => a - b));
});

test('nextSort: same column flips, new numeric column starts descending', () => {
  assert.deepEqual(nextSort({ key: 'name', dir: 'asc' }, 'name'), { key: 'name', dir: 'desc' });
  assert.deepEqual(nextSort({ key: 'name', dir: 'asc' }, 'params'), { key: 'params', dir: 'desc' });
  assert.deepEqual(nextSort({ key: 'params', dir: 'desc' }, 'dtype'), { key: 'dtype', dir: 'asc' });
});
