/**
 * Decoding of the dense (non-block-quantized) element types to float32. Block quantizations of GGUF
 * live in ggmlQuants.ts.
 */

export const DENSE_DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

export function isDenseDtype(dtype: string): boolean {
  return dtype in DENSE_DTYPE_BYTES;
}

/** IEEE 754 half -> float, via a 65,536-entry table built on first use. */
let HALF_TABLE: Float32Array | undefined;
export function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = halfToFloat(h);
  HALF_TABLE = t;
  return t;
}

/** value = (-1)^s * 2^(e-15) * (1 + m/1024); subnormal e = 0: 2^-14 * m/1024; e = 31: inf/NaN. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float -> IEEE half, round to nearest even (used by writers and F16 re-encoding). */
export function floatToHalf(f: number): number {
  const f32 = new Float32Array(1);
  f32[0] = f;
  return halfBitsFromFloat32Bits(new Uint32Array(f32.buffer)[0]);
}

/**
 * IEEE binary16 from a float32 bit pattern `x`, round to nearest even; on bits, so a whole array
 * converts without allocating per element.
 * Normal: e16 = e32 - 127 + 15, mantissa = top 10 of 23 bits, rounded on the 13 dropped bits;
 * subnormal (e16 <= 0): the mantissa with its implicit 1, shifted right by 14 - e16, rounded;
 * overflow -> inf; NaN keeps a quiet-NaN payload bit.
 */
export function halfBitsFromFloat32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** bfloat16 is the top 16 bits of a float32. */
export function bf16ToFloat(b: number): number {
  const u = new Uint32Array([b << 16]);
  return new Float32Array(u.buffer)[0];
}

/** float -> bfloat16, round to nearest even; NaN kept as NaN. */
export function floatToBf16(f: number): number {
  const u = new Uint32Array(new Float32Array([f]).buffer)[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** OCP FP8 E4M3FN: bias 7, no infinities, S.1111.111 is NaN; subnormal: 2^-6 * m/8. */
export function fp8e4m3ToFloat(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 0xf;
  const m = b & 7;
  if (e === 0xf && m === 7) return NaN;
  if (e === 0) return s * (m / 8) * 2 ** -6;
  return s * (1 + m / 8) * 2 ** (e - 7);
}

/** OCP FP8 E5M2: bias 15, IEEE-style infinities and NaN; subnormal: 2^-14 * m/4. */
export function fp8e5m2ToFloat(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >> 2) & 0x1f;
  const m = b & 3;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * (m / 4) * 2 ** -14;
  return s * (1 + m / 4) * 2 ** (e - 15);
}

/**
 * Decodes `count` elements of a dense dtype from `bytes` (little-endian unless `bigEndian`).
 * Integers convert to the nearest float32.
 */
export function decodeDense(bytes: Uint8Array, dtype: string, count: number, bigEndian = false): Float32Array {
  const size = DENSE_DTYPE_BYTES[dtype];
  if (size === undefined) throw new Error(`not a dense dtype: ${dtype}`);
  if (bytes.byteLength < count * size) throw new Error(`${dtype}: need ${count * size} bytes, have ${bytes.byteLength}`);
  const out = new Float32Array(count);
  const le = !bigEndian;
  if (dtype === 'F32' && le && bytes.byteOffset % 4 === 0) {
    out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, le); break;
    case 'F64': for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, le); break;
    case 'F16': { const t = halfTable(); for (let i = 0; i < count; i++) out[i] = t[dv.getUint16(i * 2, le)]; break; }
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = dv.getUint16(i * 2, le) << 16;
      break;
    }
    case 'F8_E4M3': { const t = new Float32Array(256).map((_, b) => fp8e4m3ToFloat(b)); for (let i = 0; i < count; i++) out[i] = t[bytes[i]]; break; }
    case 'F8_E5M2': { const t = new Float32Array(256).map((_, b) => fp8e5m2ToFloat(b)); for (let i = 0; i < count; i++) out[i] = t[bytes[i]]; break; }
    case 'I64': for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(i * 8, le)); break;
    case 'U64': for (let i = 0; i < count; i++) out[i] = Number(dv.getBigUint64(i * 8, le)); break;
    case 'I32': for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, le); break;
    case 'U32': for (let i = 0; i < count; i++) out[i] = dv.getUint32(i * 4, le); break;
    case 'I16': for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, le); break;
    case 'U16': for (let i = 0; i < count; i++) out[i] = dv.getUint16(i * 2, le); break;
    case 'I8': for (let i = 0; i < count; i++) out[i] = dv.getInt8(i); break;
    case 'U8': case 'BOOL': for (let i = 0; i < count; i++) out[i] = bytes[i]; break;
  }
  return out;
}
