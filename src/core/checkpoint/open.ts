import * as path from 'node:path';
import { FileAccessor } from './fileAccessor';
import { CheckpointError } from './errors';
import type { Checkpoint } from './types';
import { openSafetensors, openSafetensorsIndex } from './safetensors';
import { openGguf } from './gguf';
import { openOnnx } from './onnx';
import { openPytorch } from './pytorch';
import { openNpy, openNpz } from './npy';

export type DetectedFormat = 'safetensors' | 'safetensors-index' | 'gguf' | 'onnx' | 'zip' | 'npy' | 'pickle' | 'unknown';

/**
 * Recognises a checkpoint by its first bytes, not only by its name:
 * - `GGUF` magic -> GGUF;  `\x93NUMPY` -> .npy;  `PK\x03\x04` -> zip (PyTorch or .npz);
 * - u64 little-endian header length followed by `{` -> safetensors;
 * - `{` with a "weight_map" -> a sharded safetensors index;
 * - `\x80` + protocol byte -> a legacy (pre-1.6) raw pickle, which we refuse with a clear message;
 * - protobuf whose first field is ModelProto.ir_version (tag 0x08) -> ONNX; `.onnx` names too.
 */
export function detectFormat(head: Uint8Array, fileName: string, fileSize: number): DetectedFormat {
  const ascii = (a: number, b: number) => String.fromCharCode(...head.subarray(a, b));
  if (head.length >= 4 && ascii(0, 4) === 'GGUF') return 'gguf';
  if (head.length >= 6 && head[0] === 0x93 && ascii(1, 6) === 'NUMPY') return 'npy';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'zip';
  if (head.length >= 9) {
    const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const n = dv.getBigUint64(0, true);
    if (n > 1n && n <= BigInt(fileSize) - 8n && head[8] === 0x7b /* { */) return 'safetensors';
  }
  const lower = fileName.toLowerCase();
  // A .safetensors whose header length is implausible still goes to the safetensors reader, which
  // says precisely what is wrong with it (better than "unrecognised format").
  if (lower.endsWith('.safetensors')) return 'safetensors';
  if (lower.endsWith('.gguf')) return 'gguf';
  if (head.length >= 1 && (head[0] === 0x7b || head[0] === 0x20 || head[0] === 0x0a) && lower.endsWith('.json')) return 'safetensors-index';
  if (head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) return 'pickle';
  if (head.length >= 2 && head[0] === 0x08 && (lower.endsWith('.onnx') || head[1] < 0x80)) return 'onnx';
  if (lower.endsWith('.onnx')) return 'onnx';
  return 'unknown';
}

/** Opens any supported checkpoint lazily: only the header (index) is read here. */
export async function open(filePath: string): Promise<Checkpoint> {
  const abs = path.resolve(filePath);
  const fa = await FileAccessor.open(abs);
  let head: Uint8Array;
  try {
    head = await fa.readUpTo(0, 16);
  } finally {
    await fa.close();
  }
  if (head.length === 0) throw new CheckpointError(abs, 'file is empty', { offset: 0 });
  const kind = detectFormat(head, abs, fa.size);
  switch (kind) {
    case 'gguf': return openGguf(abs);
    case 'safetensors': return openSafetensors(abs);
    case 'safetensors-index': return openSafetensorsIndex(abs);
    case 'onnx': return openOnnx(abs);
    case 'npy': return openNpy(abs);
    case 'zip': return abs.toLowerCase().endsWith('.npz') ? openNpz(abs) : openPytorch(abs);
    case 'pickle':
      throw new CheckpointError(abs, 'a raw pickle (PyTorch before 1.6, or a plain pickle) is not supported: it cannot be loaded without executing code. Re-save it with torch.save() (zip format) or as safetensors', { offset: 0 });
    default:
      throw new CheckpointError(abs, `unrecognised format (first bytes ${Array.from(head.subarray(0, 8)).map((b) => b.toString(16).padStart(2, '0')).join(' ')}); expected safetensors, GGUF, ONNX, a PyTorch zip checkpoint, .npy or .npz`, { offset: 0 });
  }
}
