import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { open, summarize } from '../../src/core/checkpoint';
import { groupOf, groupOrder } from '../../src/core/checkpoint/grouping';
import { ARRAY_ITEMS_SHOWN, PREVIEW_CHARS, buildOverviewModel, displayFile, metadataEntry } from '../../src/extension/overviewModel';

const fixtures = path.resolve(__dirname, '../../../shared/fixtures');

async function summaryOf(rel: string) {
  const ckpt = await open(path.join(fixtures, rel));
  try { return summarize(ckpt); } finally { await ckpt.close(); }
}

test('overview of the real stories260K.gguf: totals, dtype mix and groups agree with the tensor list', async () => {
  const s = await summaryOf('real/stories260K.gguf');
  const m = buildOverviewModel(s);
  assert.equal(m.fileName, 'stories260K.gguf');
  assert.equal(m.tensors.length, 48); // README: 48 tensors
  // Total = sum of products of shapes, computed here independently of the reader's params field.
  const total = m.tensors.reduce((a, t) => a + t.shape.reduce((p, d) => p * d, 1), 0);
  assert.equal(m.totalParams, total);
  assert.deepEqual(m.dtypeMix, [{ dtype: 'F32', params: total }]); // README: all F32
  for (const t of m.tensors) assert.equal(t.groupOrder, groupOrder(groupOf(t.name)), t.name);
  assert.equal(m.tensors.filter((t) => t.group.startsWith('block ')).map((t) => t.groupOrder).reduce((a, b) => Math.max(a, b), 0), 4); // 5 layers
  // Every tensor's data lies inside the file and the files are shown relative to it.
  for (const t of m.tensors) {
    assert.equal(t.file, 'stories260K.gguf');
    assert.ok(t.byteOffset + t.byteLength <= m.sizeOnDisk, t.name);
  }
  // The 512-entry tokenizer shows its first entries and its true length.
  const tokens = m.metadata.find((e) => e.key === 'tokenizer.ggml.tokens');
  assert.ok(tokens, 'tokenizer.ggml.tokens listed');
  assert.equal(tokens.arrayLength, 512);
  assert.match(tokens.text, /^\["<unk>", "<s>", "<\/s>", .*more\]/);
  assert.ok(tokens.preview.length <= PREVIEW_CHARS + 1);
  const arch = m.metadata.find((e) => e.key === 'general.architecture');
  assert.deepEqual(arch && { text: arch.text, long: arch.long }, { text: 'llama', long: false });
});

test('overview of pico.safetensors: dtype mix adds up; the long "vocab" metadata collapses', async () => {
  const s = await summaryOf('pico/pico.safetensors');
  const m = buildOverviewModel(s);
  const sum = m.dtypeMix.reduce((a, d) => a + d.params, 0);
  assert.equal(sum, m.totalParams);
  for (let i = 1; i < m.dtypeMix.length; i++) assert.ok(m.dtypeMix[i - 1].params >= m.dtypeMix[i].params);
  assert.deepEqual(m.dtypeMix.map((d) => d.dtype), ['F32']);
  // The long "vocab" metadata string is collapsed; the short "arch" is not.
  const vocab = m.metadata.find((e) => e.key === 'vocab');
  assert.ok(vocab?.long);
  assert.equal(m.metadata.find((e) => e.key === 'arch')?.long, false);
});

test('overview of pico_f16.safetensors: every parameter is F16', async () => {
  const m = buildOverviewModel(await summaryOf('pico/pico_f16.safetensors'));
  assert.deepEqual(m.dtypeMix, [{ dtype: 'F16', params: m.totalParams }]);
  // F16 stores 2 bytes per parameter.
  for (const t of m.tensors) assert.equal(t.byteLength, 2 * t.params, t.name);
});

test('metadataEntry: short scalars stay inline, long and multi-line values collapse', () => {
  assert.deepEqual(metadataEntry('n', 5), { key: 'n', text: '5', preview: '5', long: false });
  assert.equal(metadataEntry('b', 2n ** 64n - 1n).text, '18446744073709551615');
  const long = metadataEntry('s', 'x'.repeat(500));
  assert.equal(long.long, true);
  assert.equal(long.preview, `${'x'.repeat(PREVIEW_CHARS)}…`);
  const lines = metadataEntry('t', 'line one\nline two');
  assert.equal(lines.long, true);
  assert.equal(lines.preview, 'line one…');
  const arr = metadataEntry('a', Array.from({ length: 100 }, (_, i) => i));
  assert.equal(arr.arrayLength, 100);
  assert.ok(arr.text.endsWith(`… ${100 - ARRAY_ITEMS_SHOWN} more]`), arr.text.slice(-40));
  const typed = metadataEntry('f', new Float32Array([1.5, 2]));
  assert.deepEqual([typed.text, typed.arrayLength], ['[1.5, 2]', 2]);
  const huge = metadataEntry('h', 'y'.repeat(100_000));
  assert.ok(huge.text.length < 9_000);
});

test('displayFile: relative inside the opened file\'s folder, absolute outside', () => {
  assert.equal(displayFile('/m/a/model-00001.safetensors', '/m/a/model.safetensors.index.json'), 'model-00001.safetensors');
  assert.equal(displayFile('/elsewhere/x.data', '/m/a/model.onnx'), '/elsewhere/x.data');
});
