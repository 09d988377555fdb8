import type { Checkpoint } from './types';
import { CheckpointError } from './errors';

// TODO(helper): the npy/npz reader replaces this placeholder.
export async function openNpy(path: string): Promise<Checkpoint> {
  throw new CheckpointError(path, 'npy reader not yet built');
}
export async function openNpz(path: string): Promise<Checkpoint> {
  throw new CheckpointError(path, 'npz reader not yet built');
}
/** Writes a float32 array as a .npy file (C order) through a temporary file and rename. */
export async function writeNpy(path: string, data: Float32Array, shape: number[]): Promise<void> {
  throw new Error(`npy writer not yet built (${path}, ${data.length}, ${shape})`);
}
