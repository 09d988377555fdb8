// Helpers for the safetensors tests: a minimal writer (so tests can build shards and corrupt files
// from real tensors) and paths to the shared fixtures.
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';

export const SHARED = path.resolve(__dirname, '../../../../shared');
export const FIXTURES = path.join(SHARED, 'fixtures');
export const REFERENCE = path.join(SHARED, 'reference');

export interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** 8-byte little-endian length + header text (padded with spaces to a multiple of 8, like the reference writer). */
export function frameHeader(headerText: string, padTo8 = true): Uint8Array {
  let text = headerText;
  if (padTo8) while (Buffer.byteLength(text) % 8 !== 0) text += ' ';
  const json = Buffer.from(text, 'utf8');
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** Serialises tensors back to back, in the given order, with optional __metadata__. */
export function buildSafetensors(tensors: RawTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  const framed = frameHeader(JSON.stringify(header));
  const out = new Uint8Array(framed.length + off);
  out.set(framed, 0);
  let at = framed.length;
  for (const t of tensors) { out.set(t.bytes, at); at += t.bytes.length; }
  return out;
}

/** Splits a real safetensors file into its header JSON and data region (read with plain fs, not the reader). */
export async function splitSafetensors(file: string): Promise<{ header: Record<string, any>; data: Uint8Array; headerLength: number }> {
  const buf = new Uint8Array(await fsp.readFile(file));
  const n = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(buf.subarray(8, 8 + n)).toString('utf8'));
  return { header, data: buf.subarray(8 + n), headerLength: n };
}

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `ts-${prefix}-`));
}

export interface SpectraRef {
  name: string;
  shape: number[];
  singularValues: number[];
  frobeniusNorm: number;
}

export async function loadSpectra(model: 'pico' | 'stories260k'): Promise<SpectraRef[]> {
  const j = JSON.parse(await fsp.readFile(path.join(REFERENCE, `${model}.spectra.json`), 'utf8'));
  return j.tensors;
}

/** ||W||_F accumulated in float64. */
export function frobenius(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}
