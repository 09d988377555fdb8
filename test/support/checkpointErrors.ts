/**
 * For the readers' bad-input tests: open a file, read every tensor, close it, and hand back the
 * CheckpointError that must have been thrown on the way; anything else (another error type, or no
 * error at all) fails the test.
 */
import assert from 'node:assert/strict';
import { CheckpointError } from '../../src/core/checkpoint/errors';

export interface Readable { tensors: Array<{ read(): Promise<unknown> }>; close(): Promise<void> }

export async function readAllFailure(file: string, open: (path: string) => Promise<Readable>): Promise<CheckpointError> {
  try {
    const c = await open(file);
    try {
      for (const t of c.tensors) await t.read();
    } finally {
      await c.close();
    }
  } catch (e) {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${(e as Error)?.stack ?? e}`);
    return e;
  }
  assert.fail(`${file} opened without error`);
}
