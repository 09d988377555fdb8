/**
 * ggml tensor types: the type table (id, name, block size, bytes per block) and the decoding of every
 * block quantization we support to float32, plus the reference Q8_0 quantizer the writers use.
 *
 * Layouts follow ggml/src/ggml-common.h (the `block_*` structs, all little-endian, no padding) and the
 * meaning of their fields follows `dequantize_row_*` in ggml/src/ggml-quants.c. Notation below:
 * `half(b, o)` is the IEEE binary16 at byte o, QK_K = 256 is the super-block size of the k-quants.
 *
 * "type-0" quants: w = d * q.   "type-1" quants: w = d * q + m  (k-quants write it as d*q - dmin*m).
 *
 * Every product below is exact in float64 (a binary16 scale has 11 significant bits, the integer
 * factors at most 8 + 6 bits), so storing into a Float32Array rounds once, like ggml's float math.
 */
import { decodeDense, halfTable, floatToHalf } from './dtype';

/** Super-block size of the k-quants (ggml's QK_K). */
export const QK_K = 256;

export interface GgmlTypeInfo {
  /** ggml's `enum ggml_type` value, as stored in a GGUF tensor info. */
  id: number;
  /** ggml's type name, upper case (what `TensorInfo.dtype` shows): F32, Q4_K, IQ2_XXS, ... */
  name: string;
  /** Elements per block (1 for the dense types). */
  blockSize: number;
  /** Bytes one block occupies. */
  bytesPerBlock: number;
  /** True when `dequantizeInto` can decode this type. */
  decodable: boolean;
  /** For dense types, the dtype name understood by dtype.ts `decodeDense`. */
  dense?: string;
}

/** ggml's type ids (ggml/include/ggml.h `enum ggml_type`); 4, 5 and 31-33, 36-38 were removed upstream. */
export const GgmlType = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30,
  TQ1_0: 34, TQ2_0: 35, MXFP4: 39,
} as const;

function entry(id: number, name: string, blockSize: number, bytesPerBlock: number, decodable: boolean, dense?: string): GgmlTypeInfo {
  return Object.freeze({ id, name, blockSize, bytesPerBlock, decodable, ...(dense ? { dense } : {}) });
}

/**
 * The type table, indexed by type id. Block byte sizes are `sizeof(block_*)` from ggml-common.h.
 * The IQ*, TQ* and MXFP4 types are listed (so a file using them still opens, shows its tensors and
 * can be copied through with readRaw) but are not decoded: they need ggml's codebook grids.
 */
export const ggmlTypeInfo: Readonly<Record<number, GgmlTypeInfo>> = Object.freeze({
  0: entry(0, 'F32', 1, 4, true, 'F32'),
  1: entry(1, 'F16', 1, 2, true, 'F16'),
  2: entry(2, 'Q4_0', 32, 2 + 16, true),           // d, qs[16]
  3: entry(3, 'Q4_1', 32, 2 + 2 + 16, true),       // d, m, qs[16]
  6: entry(6, 'Q5_0', 32, 2 + 4 + 16, true),       // d, qh[4], qs[16]
  7: entry(7, 'Q5_1', 32, 2 + 2 + 4 + 16, true),   // d, m, qh[4], qs[16]
  8: entry(8, 'Q8_0', 32, 2 + 32, true),           // d, qs[32]
  9: entry(9, 'Q8_1', 32, 2 + 2 + 32, true),       // d, s = d*sum(qs), qs[32]
  10: entry(10, 'Q2_K', QK_K, 16 + 64 + 2 + 2, true),        // scales[16], qs[64], d, dmin
  11: entry(11, 'Q3_K', QK_K, 32 + 64 + 12 + 2, true),       // hmask[32], qs[64], scales[12], d
  12: entry(12, 'Q4_K', QK_K, 2 + 2 + 12 + 128, true),       // d, dmin, scales[12], qs[128]
  13: entry(13, 'Q5_K', QK_K, 2 + 2 + 12 + 32 + 128, true),  // d, dmin, scales[12], qh[32], qs[128]
  14: entry(14, 'Q6_K', QK_K, 128 + 64 + 16 + 2, true),      // ql[128], qh[64], scales[16], d
  15: entry(15, 'Q8_K', QK_K, 4 + 256 + 32, true),           // d (f32), qs[256], bsums[16] (i16)
  16: entry(16, 'IQ2_XXS', QK_K, 2 + 64, false),
  17: entry(17, 'IQ2_XS', QK_K, 2 + 64 + 8, false),
  18: entry(18, 'IQ3_XXS', QK_K, 2 + 96, false),
  19: entry(19, 'IQ1_S', QK_K, 2 + 32 + 16, false),
  20: entry(20, 'IQ4_NL', 32, 2 + 16, false),
  21: entry(21, 'IQ3_S', QK_K, 2 + 64 + 8 + 32 + 4, false),
  22: entry(22, 'IQ2_S', QK_K, 2 + 64 + 16, false),
  23: entry(23, 'IQ4_XS', QK_K, 2 + 2 + 4 + 128, false),
  24: entry(24, 'I8', 1, 1, true, 'I8'),
  25: entry(25, 'I16', 1, 2, true, 'I16'),
  26: entry(26, 'I32', 1, 4, true, 'I32'),
  27: entry(27, 'I64', 1, 8, true, 'I64'),
  28: entry(28, 'F64', 1, 8, true, 'F64'),
  29: entry(29, 'IQ1_M', QK_K, 32 + 16 + 8, false),
  30: entry(30, 'BF16', 1, 2, true, 'BF16'),
  34: entry(34, 'TQ1_0', QK_K, 48 + 4 + 2, false),
  35: entry(35, 'TQ2_0', QK_K, 64 + 2, false),
  39: entry(39, 'MXFP4', 32, 1 + 16, false),
});

/** The type id for a ggml type name (e.g. 'Q4_K' -> 12), or undefined. */
export function ggmlTypeId(name: string): number | undefined {
  for (const info of Object.values(ggmlTypeInfo)) if (info.name === name) return info.id;
  return undefined;
}

/** A printable name for any type id, known or not: "Q4_K", or "unknown" for ids ggml never defined. */
export function ggmlTypeName(id: number): string {
  return ggmlTypeInfo[id]?.name ?? 'unknown';
}

/**
 * Bytes a tensor of `count` elements occupies in type `id` (count must be a multiple of the block size;
 * ggml additionally requires each row, ne0, to be a whole number of blocks).
 */
export function ggmlByteLength(id: number, count: number): number {
  const info = ggmlTypeInfo[id];
  if (!info) throw new Error(`unknown ggml type id ${id}`);
  if (count % info.blockSize !== 0) throw new Error(`${info.name}: ${count} elements is not a whole number of ${info.blockSize}-element blocks`);
  return (count / info.blockSize) * info.bytesPerBlock;
}

/**
 * Decodes whole blocks of type `id` from `src` into `dst` starting at element `dstOffset`.
 * `src.byteLength` must be a multiple of the block size in bytes; it decodes
 * `src.byteLength / bytesPerBlock * blockSize` elements. Throws for undecodable types.
 */
export function dequantizeInto(id: number, src: Uint8Array, dst: Float32Array, dstOffset = 0): void {
  const info = ggmlTypeInfo[id];
  if (!info) throw new Error(`unknown ggml type id ${id}`);
  if (!info.decodable) throw new Error(`ggml type ${info.name} (${id}) cannot be decoded`);
  if (src.byteLength % info.bytesPerBlock !== 0) {
    throw new Error(`${info.name}: ${src.byteLength} bytes is not a whole number of ${info.bytesPerBlock}-byte blocks`);
  }
  const nBlocks = src.byteLength / info.bytesPerBlock;
  if (dstOffset + nBlocks * info.blockSize > dst.length) throw new Error(`${info.name}: output too short`);
  if (info.dense) {
    dst.set(decodeDense(src, info.dense, nBlocks), dstOffset);
    return;
  }
  const H = halfTable();
  switch (id) {
    case GgmlType.Q4_0: return decodeQ4_0(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q4_1: return decodeQ4_1(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q5_0: return decodeQ5_0(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q5_1: return decodeQ5_1(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q8_0: return decodeQ8_0(src, nBlocks, dst, dstOffset, H, 34, 2);
    case GgmlType.Q8_1: return decodeQ8_0(src, nBlocks, dst, dstOffset, H, 36, 4);
    case GgmlType.Q2_K: return decodeQ2_K(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q3_K: return decodeQ3_K(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q4_K: return decodeQ4_K(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q5_K: return decodeQ5_K(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q6_K: return decodeQ6_K(src, nBlocks, dst, dstOffset, H);
    case GgmlType.Q8_K: return decodeQ8_K(src, nBlocks, dst, dstOffset);
    default: throw new Error(`ggml type ${info.name} (${id}) has no decoder`);
  }
}

/** Decodes `src` (whole blocks of type `id`) to a new Float32Array. */
export function dequantize(id: number, src: Uint8Array): Float32Array {
  const info = ggmlTypeInfo[id];
  if (!info) throw new Error(`unknown ggml type id ${id}`);
  const out = new Float32Array((src.byteLength / info.bytesPerBlock) * info.blockSize);
  dequantizeInto(id, src, out, 0);
  return out;
}

const half = (b: Uint8Array, o: number, H: Float32Array): number => H[b[o] | (b[o + 1] << 8)];
const int8 = (v: number): number => (v << 24) >> 24;

/** Q4_0, 18-byte block {d, qs[16]}: w[j] = d*((qs[j] & 15) - 8), w[j+16] = d*((qs[j] >> 4) - 8), j < 16. */
function decodeQ4_0(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  for (let i = 0, o = 0; i < nb; i++, o += 18, yo += 32) {
    const d = half(b, o, H);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 2 + j];
      y[yo + j] = ((q & 15) - 8) * d;
      y[yo + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/** Q4_1, 20-byte block {d, m, qs[16]}: w[j] = d*(qs[j] & 15) + m, w[j+16] = d*(qs[j] >> 4) + m. */
function decodeQ4_1(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  for (let i = 0, o = 0; i < nb; i++, o += 20, yo += 32) {
    const d = half(b, o, H);
    const m = half(b, o + 2, H);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 4 + j];
      y[yo + j] = (q & 15) * d + m;
      y[yo + j + 16] = (q >> 4) * d + m;
    }
  }
}

/**
 * Q5_0, 22-byte block {d, qh (u32), qs[16]}: the 5th bit of element j is bit j of qh.
 * w[j] = d*(((qs[j] & 15) | bit_j << 4) - 16), w[j+16] = d*(((qs[j] >> 4) | bit_{j+16} << 4) - 16).
 */
function decodeQ5_0(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  for (let i = 0, o = 0; i < nb; i++, o += 22, yo += 32) {
    const d = half(b, o, H);
    const qh = (b[o + 2] | (b[o + 3] << 8) | (b[o + 4] << 16) | (b[o + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 6 + j];
      y[yo + j] = (((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
      y[yo + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
    }
  }
}

/** Q5_1, 24-byte block {d, m, qh (u32), qs[16]}: as Q5_0 without the -16 offset, plus m. */
function decodeQ5_1(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  for (let i = 0, o = 0; i < nb; i++, o += 24, yo += 32) {
    const d = half(b, o, H);
    const m = half(b, o + 2, H);
    const qh = (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 8 + j];
      y[yo + j] = ((q & 15) | (((qh >>> j) & 1) << 4)) * d + m;
      y[yo + j + 16] = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
    }
  }
}

/**
 * Q8_0, 34-byte block {d, qs[32] (i8)}: w[j] = d*qs[j]. Q8_1 (36 bytes) is the same with an extra
 * half `s = d*sum(qs)` before the quants, which the values do not need.
 */
function decodeQ8_0(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array, blockBytes: number, qsAt: number): void {
  const q = new Int8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0, o = 0; i < nb; i++, o += blockBytes, yo += 32) {
    const d = half(b, o, H);
    const qo = o + qsAt;
    for (let j = 0; j < 32; j++) y[yo + j] = q[qo + j] * d;
  }
}

/**
 * Q2_K, 84-byte super-block {scales[16], qs[64], d, dmin}: 16 sub-blocks of 16 elements, each with a
 * 4-bit scale (low nibble) and 4-bit min (high nibble) of scales[s]. Element e = 128h + 32j + 16k + l
 * (h < 2, j < 4, k < 2, l < 16) has quant (qs[32h + 16k + l] >> 2j) & 3 and sub-block s = 8h + 2j + k:
 * w = d*(scales[s] & 15)*q - dmin*(scales[s] >> 4).
 */
function decodeQ2_K(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  for (let i = 0, o = 0; i < nb; i++, o += 84, yo += QK_K) {
    const d = half(b, o + 80, H);
    const dmin = half(b, o + 82, H);
    let e = yo;
    for (let h = 0; h < 2; h++) {
      const qs = o + 16 + 32 * h;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        for (let k = 0; k < 2; k++) {
          const sc = b[o + 8 * h + 2 * j + k];
          const dl = d * (sc & 15);
          const ml = dmin * (sc >> 4);
          const q0 = qs + 16 * k;
          for (let l = 0; l < 16; l++) y[e++] = dl * ((b[q0 + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

/**
 * Q3_K, 110-byte super-block {hmask[32], qs[64], scales[12], d}: 16 sub-blocks of 16, "type-0".
 * The 16 scales are 6-bit: low 4 bits from scales[s] (s < 8) or scales[s-8] >> 4 (s >= 8), high 2 bits
 * from (scales[8 + s%4] >> 2*floor(s/4)) & 3; the signed scale is that minus 32.
 * Element e = 128h + 32j + 16k + l: low 2 bits (qs[32h + 16k + l] >> 2j) & 3, high bit = bit (4h + j) of
 * hmask[16k + l]; the quant is low - (high ? 0 : 4), in [-4, 3]; w = d*(scale_s - 32)*q, s = 8h + 2j + k.
 */
function decodeQ3_K(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  const scales = new Int32Array(16);
  for (let i = 0, o = 0; i < nb; i++, o += 110, yo += QK_K) {
    const d = half(b, o + 108, H);
    const sc = o + 96;
    for (let s = 0; s < 16; s++) {
      const low = s < 8 ? b[sc + s] & 15 : b[sc + s - 8] >> 4;
      const high = (b[sc + 8 + (s & 3)] >> (2 * (s >> 2))) & 3;
      scales[s] = (low | (high << 4)) - 32;
    }
    let e = yo;
    for (let h = 0; h < 2; h++) {
      const qs = o + 32 + 32 * h;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        const hbit = 1 << (4 * h + j);
        for (let k = 0; k < 2; k++) {
          const dl = d * scales[8 * h + 2 * j + k];
          const q0 = qs + 16 * k;
          const m0 = o + 16 * k;
          for (let l = 0; l < 16; l++) {
            y[e++] = dl * (((b[q0 + l] >> shift) & 3) - (b[m0 + l] & hbit ? 0 : 4));
          }
        }
      }
    }
  }
}

/**
 * The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K from the 12-byte `scales` at `at`
 * (ggml's get_scale_min_k4): j < 4: scale = s[j] & 63, min = s[j+4] & 63;
 * j >= 4: scale = (s[j+4] & 15) | (s[j-4] >> 6) << 4, min = (s[j+4] >> 4) | (s[j] >> 6) << 4.
 */
function scaleMinK4(b: Uint8Array, at: number, j: number, out: Int32Array): void {
  if (j < 4) {
    out[0] = b[at + j] & 63;
    out[1] = b[at + j + 4] & 63;
  } else {
    out[0] = (b[at + j + 4] & 15) | ((b[at + j - 4] >> 6) << 4);
    out[1] = (b[at + j + 4] >> 4) | ((b[at + j] >> 6) << 4);
  }
}

/**
 * Q4_K, 144-byte super-block {d, dmin, scales[12], qs[128]}: 8 sub-blocks of 32, "type-1".
 * Chunk c < 4 covers elements 64c..64c+63: w[64c + l] = d*sc_{2c}*(qs[32c+l] & 15) - dmin*m_{2c},
 * w[64c + 32 + l] = d*sc_{2c+1}*(qs[32c+l] >> 4) - dmin*m_{2c+1}, with (sc, m) from scaleMinK4.
 */
function decodeQ4_K(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  const sm = new Int32Array(2);
  for (let i = 0, o = 0; i < nb; i++, o += 144, yo += QK_K) {
    const d = half(b, o, H);
    const dmin = half(b, o + 2, H);
    for (let c = 0; c < 4; c++) {
      scaleMinK4(b, o + 4, 2 * c, sm);
      const d1 = d * sm[0], m1 = dmin * sm[1];
      scaleMinK4(b, o + 4, 2 * c + 1, sm);
      const d2 = d * sm[0], m2 = dmin * sm[1];
      const qs = o + 16 + 32 * c;
      const e = yo + 64 * c;
      for (let l = 0; l < 32; l++) {
        const q = b[qs + l];
        y[e + l] = d1 * (q & 15) - m1;
        y[e + 32 + l] = d2 * (q >> 4) - m2;
      }
    }
  }
}

/**
 * Q5_K, 176-byte super-block {d, dmin, scales[12], qh[32], qs[128]}: as Q4_K with a 5th bit:
 * element 64c + l takes bit 2c of qh[l], element 64c + 32 + l takes bit 2c+1 of qh[l] (worth 16).
 */
function decodeQ5_K(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  const sm = new Int32Array(2);
  for (let i = 0, o = 0; i < nb; i++, o += 176, yo += QK_K) {
    const d = half(b, o, H);
    const dmin = half(b, o + 2, H);
    const qh = o + 16;
    for (let c = 0; c < 4; c++) {
      scaleMinK4(b, o + 4, 2 * c, sm);
      const d1 = d * sm[0], m1 = dmin * sm[1];
      scaleMinK4(b, o + 4, 2 * c + 1, sm);
      const d2 = d * sm[0], m2 = dmin * sm[1];
      const u1 = 1 << (2 * c), u2 = 2 << (2 * c);
      const qs = o + 48 + 32 * c;
      const e = yo + 64 * c;
      for (let l = 0; l < 32; l++) {
        const q = b[qs + l], hb = b[qh + l];
        y[e + l] = d1 * ((q & 15) + (hb & u1 ? 16 : 0)) - m1;
        y[e + 32 + l] = d2 * ((q >> 4) + (hb & u2 ? 16 : 0)) - m2;
      }
    }
  }
}

/**
 * Q6_K, 210-byte super-block {ql[128], qh[64], scales[16] (i8), d}: 16 sub-blocks of 16, "type-0",
 * quants 6-bit minus 32. Half h < 2 uses ql[64h..], qh[32h..], scales[8h..]; for l < 32, with
 * s = l >> 4 and qh byte t = qh[32h + l]:
 *   w[128h + l]      = d*sc[s]  *((ql[l]    & 15 | (t      & 3) << 4) - 32)
 *   w[128h + l + 32] = d*sc[s+2]*((ql[l+32] & 15 | (t >> 2 & 3) << 4) - 32)
 *   w[128h + l + 64] = d*sc[s+4]*((ql[l]    >> 4 | (t >> 4 & 3) << 4) - 32)
 *   w[128h + l + 96] = d*sc[s+6]*((ql[l+32] >> 4 | (t >> 6 & 3) << 4) - 32)
 */
function decodeQ6_K(b: Uint8Array, nb: number, y: Float32Array, yo: number, H: Float32Array): void {
  for (let i = 0, o = 0; i < nb; i++, o += 210, yo += QK_K) {
    const d = half(b, o + 208, H);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h, qh = o + 128 + 32 * h, sc = o + 192 + 8 * h;
      const e = yo + 128 * h;
      for (let l = 0; l < 32; l++) {
        const s = l >> 4;
        const t = b[qh + l];
        const a = b[ql + l], c = b[ql + l + 32];
        y[e + l] = d * int8(b[sc + s]) * (((a & 15) | ((t & 3) << 4)) - 32);
        y[e + l + 32] = d * int8(b[sc + s + 2]) * (((c & 15) | (((t >> 2) & 3) << 4)) - 32);
        y[e + l + 64] = d * int8(b[sc + s + 4]) * (((a >> 4) | (((t >> 4) & 3) << 4)) - 32);
        y[e + l + 96] = d * int8(b[sc + s + 6]) * (((c >> 4) | (((t >> 6) & 3) << 4)) - 32);
      }
    }
  }
}

/** Q8_K, 292-byte super-block {d (f32), qs[256] (i8), bsums[16] (i16)}: w[j] = d*qs[j]. */
function decodeQ8_K(b: Uint8Array, nb: number, y: Float32Array, yo: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0, o = 0; i < nb; i++, o += 292, yo += QK_K) {
    const d = dv.getFloat32(o, true);
    for (let j = 0; j < QK_K; j++) y[yo + j] = d * int8(b[o + 4 + j]);
  }
}

/** C's roundf: round half away from zero (JS Math.round rounds half up). */
function roundHalfAwayFromZero(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/**
 * ggml's reference quantizer quantize_row_q8_0_ref, bit for bit. Per block of 32 values x:
 *   amax = max |x|,  d = amax / 127,  id = d ? 1/d : 0,  q[j] = roundf(x[j] * id)  (half away from zero),
 *   stored as {fp16(d) (round to nearest even), q[0..31] as i8}.
 * All arithmetic is float32 like the C code (Math.fround after each operation).
 * `values.length` must be a multiple of 32 (ggml asserts the same).
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new Error(`quantizeQ8_0: ${values.length} values is not a multiple of the block size 32`);
  const nb = values.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    const x = i * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(values[x + j]);
      if (a > amax) amax = a;
    }
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const h = floatToHalf(d);
    const o = i * 34;
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < 32; j++) {
      const q = roundHalfAwayFromZero(Math.fround(values[x + j] * id));
      out[o + 2 + j] = q & 0xff;
    }
  }
  return out;
}
