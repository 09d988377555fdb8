import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatCompact, formatInt, formatPercent, formatShape } from '../../webview/overview/format';

test('formatInt groups thousands', () => {
  assert.equal(formatInt(818048), '818,048');
  assert.equal(formatInt(0), '0');
});

test('formatCompact: three significant digits, carries into the next unit', () => {
  assert.equal(formatCompact(292_800), '293K');
  assert.equal(formatCompact(1_500), '1.5K');
  assert.equal(formatCompact(999_999), '1M'); // 999.999K rounds to 1000K -> 1M
  assert.equal(formatCompact(70_553_706_496), '70.6B');
  assert.equal(formatCompact(42), '42');
});

test('formatBytes uses binary units (1 MiB = 2^20 bytes)', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1024), '1.00 KiB');
  assert.equal(formatBytes(1_185_376), `${(1_185_376 / 2 ** 20).toFixed(2)} MiB`);
  assert.equal(formatBytes(3 * 2 ** 30), '3.00 GiB');
});

test('formatShape and formatPercent', () => {
  assert.equal(formatShape([512, 64]), '[512, 64]');
  assert.equal(formatShape([]), '[]');
  assert.equal(formatPercent(1, 3), '33.3%');
  assert.equal(formatPercent(1, 1e6), '<0.1%');
  assert.equal(formatPercent(0, 10), '0.0%');
  assert.equal(formatPercent(5, 0), '0%');
  assert.equal(formatPercent(842_794, 842_917), '>99.9%'); // pico.onnx: F32 beside 123 I64 parameters
  assert.equal(formatPercent(10, 10), '100.0%');
});
