import type { Checkpoint } from './types';
import { CheckpointError } from './errors';

// TODO(helper): the gguf reader replaces this placeholder.
export async function openGguf(path: string): Promise<Checkpoint> {
  throw new CheckpointError(path, 'gguf reader not yet built');
}
