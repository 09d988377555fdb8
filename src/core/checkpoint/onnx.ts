import type { Checkpoint } from './types';
import { CheckpointError } from './errors';

// TODO(helper): the onnx reader replaces this placeholder.
export async function openOnnx(path: string): Promise<Checkpoint> {
  throw new CheckpointError(path, 'onnx reader not yet built');
}
