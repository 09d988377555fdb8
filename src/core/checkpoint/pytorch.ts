import type { Checkpoint } from './types';
import { CheckpointError } from './errors';

// TODO(helper): the pytorch reader replaces this placeholder.
export async function openPytorch(path: string): Promise<Checkpoint> {
  throw new CheckpointError(path, 'pytorch reader not yet built');
}
