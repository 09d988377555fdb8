import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { compressionTableCommand } from '../../src/cli/commands/table';
import { UsageError } from '../../src/cli/args';
import { capture } from './surgeryCliUtil';

const SHARED = path.resolve(__dirname, '../../../shared');
const PICO = path.join(SHARED, 'fixtures/pico/pico.safetensors');

test('table --json on PicoGPT: one row per chi with the documented keys, the held-out text subset', async () => {
  const c = capture();
  const code = await compressionTableCommand.run([PICO, '--method', 'mpo', '--chi', '8,32', '--text', path.join(SHARED, 'text/tinyshakespeare.txt'), '--chars', '800', '--json'], c.io);
  assert.equal(code, 0, c.err.join('\n'));
  const r = JSON.parse(c.out.join('\n'));
  assert.deepEqual(r.rows.map((x: { chi: number }) => x.chi), [8, 32]);
  for (const k of ['matrixParams', 'matrixRatio', 'modelParams', 'modelRatio', 'relativeError', 'perplexity', 'accuracy', 'accuracyOfDense', 'top1Agreement', 'klDivergence']) assert.equal(typeof r.rows[0][k], 'number', k);
  assert.equal(r.text.characters, 800);
  assert.match(r.text.source, /last 10%, first 800 characters/);
  assert.ok(r.rows[1].matrixParams > r.rows[0].matrixParams);
  assert.ok(r.rows[1].relativeError < r.rows[0].relativeError);

  const t = capture();
  assert.equal(await compressionTableCommand.run([PICO, '--chi', '32', '--chars', '10'], t.io), 0);
  assert.match(t.out.join('\n'), /chi +matrix params/);
});

test('table: unsupported method and bad chi lists are usage errors', async () => {
  await assert.rejects(compressionTableCommand.run([PICO, '--method', 'svd'], capture().io), UsageError);
  await assert.rejects(compressionTableCommand.run([PICO, '--chi', '4,x'], capture().io), UsageError);
});
