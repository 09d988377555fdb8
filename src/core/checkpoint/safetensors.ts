import type { Checkpoint } from './types';
import { CheckpointError } from './errors';

// TODO(helper): the safetensors reader replaces this placeholder.
export async function openSafetensors(path: string): Promise<Checkpoint> {
  throw new CheckpointError(path, 'safetensors reader not yet built');
}
export async function openSafetensorsIndex(path: string): Promise<Checkpoint> {
  throw new CheckpointError(path, 'safetensors reader not yet built');
}
