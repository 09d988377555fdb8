/**
 * ggml block decoding, checked two independent ways:
 *  1. "pack known fields": the test packs chosen integer quants, scales and mins into block bytes the
 *     way ggml's quantize_row_*_ref packs them (ggml-quants.c), and the decoder must return exactly
 *     d*scale*q - dmin*min computed from the chosen fields, not from the bytes;
 *  2. "bit by bit": a second decoder written here element by element — for each element it computes
 *     the bit positions of its quant, high bit, scale and min in the block and reads them with a
 *     generic little-endian bit reader — must agree exactly with the reader on random bytes.
 * Plus the reference Q8_0 quantizer against the Q8_0 fixtures, byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ggmlTypeInfo, GgmlType, dequantize, dequantizeInto, quantizeQ8_0, ggmlTypeId, ggmlByteLength, QK_K,
} from '../../../src/core/checkpoint/ggmlQuants';
import { openGguf } from '../../../src/core/checkpoint/gguf';
import { mulberry32 } from '../../../src/core/analysis/mpoRandom';

const FIX = new URL('../../../../shared/fixtures/', import.meta.url).pathname;

// ---------- small independent tools ----------

/** Seeded PRNG (mulberry32, the project's) so failures reproduce. */
const rng = mulberry32;

/** binary16 bits -> number, written from the IEEE 754 definition (independent of dtype.ts). */
function halfValue(bits: number): number {
  const sign = bits >> 15 ? -1 : 1;
  const exponent = (bits >> 10) & 31;
  const fraction = bits & 1023;
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * fraction * Math.pow(2, -24);
  return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
}

/** `n` bits starting at absolute bit `pos` of `block` (bit i of byte k is bit 8k + i), little-endian. */
function bits(block: Uint8Array, pos: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const p = pos + i;
    v |= ((block[p >> 3] >> (p & 7)) & 1) << i;
  }
  return v;
}
const u16At = (b: Uint8Array, byte: number) => bits(b, 8 * byte, 16);
const i8At = (b: Uint8Array, byte: number) => { const v = bits(b, 8 * byte, 8); return v >= 128 ? v - 256 : v; };
const halfAt = (b: Uint8Array, byte: number) => halfValue(u16At(b, byte));

/** A random finite binary16 bit pattern (exponent 1..30), so scales are never Inf/NaN. */
function finiteHalf(r: () => number): number {
  return ((r() < 0.5 ? 1 : 0) << 15) | ((1 + Math.floor(r() * 30)) << 10) | Math.floor(r() * 1024);
}

/**
 * The 6-bit (scale, min) of sub-block j of Q4_K/Q5_K, read as bit fields of the 12-byte scales array at
 * byte `at`: j < 4: scale = bits 0-5 of byte j, min = bits 0-5 of byte j+4; j >= 4: scale = low nibble of
 * byte j+4 plus bits 6-7 of byte j-4 as bits 4-5; min = high nibble of byte j+4 plus bits 6-7 of byte j.
 */
function k4ScaleMin(b: Uint8Array, at: number, j: number): [number, number] {
  const base = 8 * at;
  if (j < 4) return [bits(b, base + 8 * j, 6), bits(b, base + 8 * (j + 4), 6)];
  return [
    bits(b, base + 8 * (j + 4), 4) | (bits(b, base + 8 * (j - 4) + 6, 2) << 4),
    bits(b, base + 8 * (j + 4) + 4, 4) | (bits(b, base + 8 * j + 6, 2) << 4),
  ];
}

/** Element e of one block, decoded bit by bit (the second, independent decoder). */
function elementBitwise(type: number, b: Uint8Array, e: number): number {
  switch (type) {
    case GgmlType.Q4_0: { // {d, qs[16]}: element e < 16 in the low nibble of qs[e], e >= 16 in the high nibble of qs[e-16]
      const q = bits(b, 8 * (2 + (e & 15)) + (e >> 4) * 4, 4);
      return halfAt(b, 0) * (q - 8);
    }
    case GgmlType.Q4_1: {
      const q = bits(b, 8 * (4 + (e & 15)) + (e >> 4) * 4, 4);
      return halfAt(b, 0) * q + halfAt(b, 2);
    }
    case GgmlType.Q5_0: { // 5th bit is bit e of the u32 qh at byte 2
      const q = bits(b, 8 * (6 + (e & 15)) + (e >> 4) * 4, 4) | (bits(b, 16 + e, 1) << 4);
      return halfAt(b, 0) * (q - 16);
    }
    case GgmlType.Q5_1: {
      const q = bits(b, 8 * (8 + (e & 15)) + (e >> 4) * 4, 4) | (bits(b, 32 + e, 1) << 4);
      return halfAt(b, 0) * q + halfAt(b, 2);
    }
    case GgmlType.Q8_0: return halfAt(b, 0) * i8At(b, 2 + e);
    case GgmlType.Q8_1: return halfAt(b, 0) * i8At(b, 4 + e);
    case GgmlType.Q2_K: { // {scales[16], qs[64], d, dmin}; e = 128h + 32j + 16k + l
      const h = e >> 7, j = (e >> 5) & 3, k = (e >> 4) & 1, l = e & 15;
      const q = bits(b, 8 * (16 + 32 * h + 16 * k + l) + 2 * j, 2);
      const s = e >> 4; // sub-block of 16
      const sc = bits(b, 8 * s, 4), mn = bits(b, 8 * s + 4, 4);
      return halfAt(b, 80) * sc * q - halfAt(b, 82) * mn;
    }
    case GgmlType.Q3_K: { // {hmask[32], qs[64], scales[12], d}
      const h = e >> 7, j = (e >> 5) & 3, k = (e >> 4) & 1, l = e & 15;
      const low = bits(b, 8 * (32 + 32 * h + 16 * k + l) + 2 * j, 2);
      const high = bits(b, 8 * (e & 31) + (e >> 5), 1); // hmask byte e % 32, bit e / 32
      const s = e >> 4;
      const sLow = s < 8 ? bits(b, 8 * (96 + s), 4) : bits(b, 8 * (96 + s - 8) + 4, 4);
      const sHigh = bits(b, 8 * (96 + 8 + (s & 3)) + 2 * (s >> 2), 2);
      const scale = (sLow | (sHigh << 4)) - 32;
      return halfAt(b, 108) * scale * (low - (high ? 0 : 4));
    }
    case GgmlType.Q4_K: { // {d, dmin, scales[12], qs[128]}: sub-block e >> 5; chunk e >> 6 shares 32 bytes
      const j = e >> 5, c = e >> 6, upper = (e >> 5) & 1, l = e & 31;
      const q = bits(b, 8 * (16 + 32 * c + l) + 4 * upper, 4);
      const [sc, mn] = k4ScaleMin(b, 4, j);
      return halfAt(b, 0) * sc * q - halfAt(b, 2) * mn;
    }
    case GgmlType.Q5_K: { // {d, dmin, scales[12], qh[32], qs[128]}: 5th bit = bit j of qh[l]
      const j = e >> 5, c = e >> 6, upper = (e >> 5) & 1, l = e & 31;
      const q = bits(b, 8 * (48 + 32 * c + l) + 4 * upper, 4) | (bits(b, 8 * (16 + l) + j, 1) << 4);
      const [sc, mn] = k4ScaleMin(b, 4, j);
      return halfAt(b, 0) * sc * q - halfAt(b, 2) * mn;
    }
    case GgmlType.Q6_K: { // {ql[128], qh[64], scales[16] (i8), d}; e = 128h + 32g + l
      const h = e >> 7, g = (e >> 5) & 3, l = e & 31;
      const low = bits(b, 8 * (64 * h + l + 32 * (g & 1)) + 4 * (g >> 1), 4);
      const high = bits(b, 8 * (128 + 32 * h + l) + 2 * g, 2);
      return halfAt(b, 208) * i8At(b, 192 + (e >> 4)) * ((low | (high << 4)) - 32);
    }
    case GgmlType.Q8_K: {
      const d = new DataView(b.buffer, b.byteOffset).getFloat32(0, true);
      return d * i8At(b, 4 + e);
    }
    default: throw new Error(`no bitwise decoder for ${type}`);
  }
}

function decodeBitwise(type: number, bytes: Uint8Array): Float32Array {
  const { blockSize, bytesPerBlock } = ggmlTypeInfo[type];
  const nb = bytes.length / bytesPerBlock;
  const out = new Float32Array(nb * blockSize);
  for (let i = 0; i < nb; i++) {
    const block = bytes.slice(i * bytesPerBlock, (i + 1) * bytesPerBlock);
    for (let e = 0; e < blockSize; e++) out[i * blockSize + e] = elementBitwise(type, block, e);
  }
  return out;
}

function assertSameFloats(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], x = expected[i];
    if (!(a === x || (Number.isNaN(a) && Number.isNaN(x)))) {
      assert.fail(`${what}: element ${i} (block ${Math.floor(i / 256)}): decoded ${a}, expected ${x}`);
    }
  }
}

const BLOCK_TYPES = [
  GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q8_1,
  GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K,
];

// ---------- the type table ----------

test('ggmlTypeInfo: block sizes and bits per weight match ggml-common.h', () => {
  // Bits per weight as documented next to the block structs in ggml-common.h / the k-quants PR.
  const bpw: Record<string, number> = {
    Q4_0: 4.5, Q4_1: 5, Q5_0: 5.5, Q5_1: 6, Q8_0: 8.5, Q8_1: 9,
    Q2_K: 2.625, Q3_K: 3.4375, Q4_K: 4.5, Q5_K: 5.5, Q6_K: 6.5625, Q8_K: 9.125,
    F32: 32, F16: 16, BF16: 16, F64: 64, I8: 8, I16: 16, I32: 32, I64: 64,
  };
  for (const [name, expected] of Object.entries(bpw)) {
    const id = ggmlTypeId(name);
    assert.ok(id !== undefined, name);
    const info = ggmlTypeInfo[id];
    assert.equal(info.name, name);
    assert.equal(info.id, id);
    assert.equal((info.bytesPerBlock * 8) / info.blockSize, expected, `${name} bits per weight`);
    assert.equal(info.decodable, true, `${name} decodable`);
  }
  // ids fixed by ggml.h
  assert.deepEqual(
    ['F32', 'F16', 'Q4_0', 'Q8_0', 'Q2_K', 'Q6_K', 'Q8_K', 'IQ2_XXS', 'I8', 'F64', 'BF16'].map(ggmlTypeId),
    [0, 1, 2, 8, 10, 14, 15, 16, 24, 28, 30],
  );
  for (const k of [GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q2_K]) assert.equal(ggmlTypeInfo[k].blockSize, QK_K);
  assert.equal(ggmlTypeInfo[GgmlType.IQ2_XXS].decodable, false);
  assert.equal(ggmlTypeInfo[4], undefined, 'id 4 (Q4_2) was removed from ggml');
  assert.equal(ggmlByteLength(GgmlType.Q4_K, 512), 288);
  assert.throws(() => ggmlByteLength(GgmlType.Q8_0, 33));
});

// ---------- 1. pack known fields, the way ggml's quantizers pack them ----------

interface Packed { bytes: Uint8Array; expected: Float32Array }

function setHalf(out: Uint8Array, at: number, h: number): void { out[at] = h & 255; out[at + 1] = h >> 8; }
const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** One block of `type` with random integer fields, packed as ggml-quants.c quantize_row_*_ref does. */
function packRandomBlock(type: number, r: () => number): Packed {
  const info = ggmlTypeInfo[type];
  const out = new Uint8Array(info.bytesPerBlock);
  const y = new Float32Array(info.blockSize);
  const dh = finiteHalf(r), mh = finiteHalf(r);
  const d = halfValue(dh), m = halfValue(mh);
  switch (type) {
    case GgmlType.Q4_0: case GgmlType.Q4_1: case GgmlType.Q5_0: case GgmlType.Q5_1: {
      const five = type === GgmlType.Q5_0 || type === GgmlType.Q5_1;
      const withMin = type === GgmlType.Q4_1 || type === GgmlType.Q5_1;
      const L = Array.from({ length: 32 }, () => int(r, 0, five ? 31 : 15));
      setHalf(out, 0, dh);
      if (withMin) setHalf(out, 2, mh);
      let at = withMin ? 4 : 2;
      if (five) {
        let qh = 0;
        for (let j = 0; j < 16; j++) {
          qh |= ((L[j] & 0x10) >> 4) << j;
          qh |= ((L[j + 16] & 0x10) >> 4) << (j + 16);
        }
        for (let i = 0; i < 4; i++) out[at + i] = (qh >>> (8 * i)) & 255;
        at += 4;
      }
      for (let j = 0; j < 16; j++) out[at + j] = (L[j] & 15) | ((L[j + 16] & 15) << 4);
      const offset = withMin ? 0 : five ? 16 : 8;
      for (let j = 0; j < 32; j++) y[j] = withMin ? d * L[j] + m : d * (L[j] - offset);
      break;
    }
    case GgmlType.Q8_0: case GgmlType.Q8_1: {
      setHalf(out, 0, dh);
      const at = type === GgmlType.Q8_1 ? 4 : 2;
      let sum = 0;
      for (let j = 0; j < 32; j++) { const q = int(r, -128, 127); out[at + j] = q & 255; y[j] = d * q; sum += q; }
      if (type === GgmlType.Q8_1) setHalf(out, 2, finiteHalf(r)); // s = d*sum(q): not needed for values
      void sum;
      break;
    }
    case GgmlType.Q2_K: {
      const L = Array.from({ length: 256 }, () => int(r, 0, 3));
      const sc = Array.from({ length: 16 }, () => int(r, 0, 15));
      const mn = Array.from({ length: 16 }, () => int(r, 0, 15));
      for (let j = 0; j < 16; j++) out[j] = sc[j] | (mn[j] << 4);
      for (let j = 0; j < 256; j += 128) {
        for (let l = 0; l < 32; l++) out[16 + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
      }
      setHalf(out, 80, dh); setHalf(out, 82, mh);
      for (let e = 0; e < 256; e++) y[e] = d * sc[e >> 4] * L[e] - m * mn[e >> 4];
      break;
    }
    case GgmlType.Q3_K: {
      const L = Array.from({ length: 256 }, () => int(r, 0, 7)); // stored quant + 4
      const S = Array.from({ length: 16 }, () => int(r, 0, 63)); // stored scale + 32
      const scales = out.subarray(96, 108);
      for (let j = 0; j < 16; j++) {
        let l = S[j];
        if (j < 8) scales[j] = l & 0xf; else scales[j - 8] |= (l & 0xf) << 4;
        l >>= 4;
        scales[(j % 4) + 8] |= l << (2 * Math.floor(j / 4));
      }
      const Lc = L.slice();
      let mi = 0, hm = 1;
      for (let j = 0; j < 256; j++) {
        if (Lc[j] > 3) { out[mi] |= hm; Lc[j] -= 4; }
        if (++mi === 32) { mi = 0; hm <<= 1; }
      }
      for (let j = 0; j < 256; j += 128) {
        for (let l = 0; l < 32; l++) out[32 + j / 4 + l] = Lc[j + l] | (Lc[j + l + 32] << 2) | (Lc[j + l + 64] << 4) | (Lc[j + l + 96] << 6);
      }
      setHalf(out, 108, dh);
      for (let e = 0; e < 256; e++) y[e] = d * (S[e >> 4] - 32) * (L[e] - 4);
      break;
    }
    case GgmlType.Q4_K: case GgmlType.Q5_K: {
      const five = type === GgmlType.Q5_K;
      const L = Array.from({ length: 256 }, () => int(r, 0, five ? 31 : 15));
      const ls = Array.from({ length: 8 }, () => int(r, 0, 63));
      const lm = Array.from({ length: 8 }, () => int(r, 0, 63));
      setHalf(out, 0, dh); setHalf(out, 2, mh);
      const s = out.subarray(4, 16);
      for (let j = 0; j < 8; j++) {
        if (j < 4) { s[j] = ls[j]; s[j + 4] = lm[j]; } else {
          s[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
          s[j - 4] |= (ls[j] >> 4) << 6;
          s[j] |= (lm[j] >> 4) << 6;
        }
      }
      if (five) {
        const qh = out.subarray(16, 48), ql = out.subarray(48, 176);
        let m1 = 1, m2 = 2, qo = 0;
        for (let n = 0; n < 256; n += 64) {
          for (let j = 0; j < 32; j++) {
            let l1 = L[n + j]; if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
            let l2 = L[n + j + 32]; if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
            ql[qo + j] = l1 | (l2 << 4);
          }
          m1 <<= 2; m2 <<= 2; qo += 32;
        }
      } else {
        const q = out.subarray(16, 144);
        for (let j = 0, qo = 0; j < 256; j += 64, qo += 32) {
          for (let l = 0; l < 32; l++) q[qo + l] = L[j + l] | (L[j + l + 32] << 4);
        }
      }
      for (let e = 0; e < 256; e++) y[e] = d * ls[e >> 5] * L[e] - m * lm[e >> 5];
      break;
    }
    case GgmlType.Q6_K: {
      const L = Array.from({ length: 256 }, () => int(r, 0, 63)); // quant + 32
      const sc = Array.from({ length: 16 }, () => int(r, -128, 127));
      const ql = out.subarray(0, 128), qh = out.subarray(128, 192);
      for (let j = 0, qlo = 0, qho = 0; j < 256; j += 128, qlo += 64, qho += 32) {
        for (let l = 0; l < 32; l++) {
          const q1 = L[j + l] & 0xf, q2 = L[j + l + 32] & 0xf, q3 = L[j + l + 64] & 0xf, q4 = L[j + l + 96] & 0xf;
          ql[qlo + l] = q1 | (q3 << 4);
          ql[qlo + l + 32] = q2 | (q4 << 4);
          qh[qho + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
        }
      }
      for (let i = 0; i < 16; i++) out[192 + i] = sc[i] & 255;
      setHalf(out, 208, dh);
      for (let e = 0; e < 256; e++) y[e] = d * sc[e >> 4] * (L[e] - 32);
      break;
    }
    case GgmlType.Q8_K: {
      const dv = new DataView(out.buffer);
      const df = Math.fround((r() - 0.5) * 0.01);
      dv.setFloat32(0, df, true);
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let l = 0; l < 16; l++) { const q = int(r, -128, 127); out[4 + 16 * g + l] = q & 255; y[16 * g + l] = df * q; sum += q; }
        dv.setInt16(260 + 2 * g, sum, true);
      }
      break;
    }
    default: throw new Error(`no packer for ${type}`);
  }
  return { bytes: out, expected: y };
}

test('every block type: fields packed like ggml quantizers decode to d*scale*q - dmin*min exactly', () => {
  const r = rng(20260101);
  for (const type of BLOCK_TYPES) {
    const info = ggmlTypeInfo[type];
    const nBlocks = 24;
    const bytes = new Uint8Array(nBlocks * info.bytesPerBlock);
    const expected = new Float32Array(nBlocks * info.blockSize);
    for (let i = 0; i < nBlocks; i++) {
      const p = packRandomBlock(type, r);
      bytes.set(p.bytes, i * info.bytesPerBlock);
      expected.set(p.expected, i * info.blockSize);
    }
    assertSameFloats(dequantize(type, bytes), expected, `${info.name} packed fields`);
    // and the bit-by-bit decoder agrees with the packed fields too (it is checked, not just trusted)
    assertSameFloats(decodeBitwise(type, bytes), expected, `${info.name} bitwise decoder vs packed fields`);
  }
});

// ---------- 2. random bytes: reader vs the bit-by-bit decoder ----------

test('every block type: reader equals the bit-by-bit decoder on random bytes (incl. Inf/NaN scales)', () => {
  const r = rng(7);
  for (const type of BLOCK_TYPES) {
    const info = ggmlTypeInfo[type];
    const nBlocks = 64;
    const bytes = new Uint8Array(nBlocks * info.bytesPerBlock);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
    assertSameFloats(dequantize(type, bytes), decodeBitwise(type, bytes), `${info.name} random bytes`);
    // decoding into an offset of a larger buffer writes exactly that window
    const big = new Float32Array(nBlocks * info.blockSize + 10).fill(-7);
    dequantizeInto(type, bytes, big, 5);
    assert.equal(big[4], -7);
    assert.equal(big[big.length - 5], -7);
  }
});

test('dense ggml types decode like their definitions (F16, BF16, F64, I8..I64)', () => {
  const dv = new DataView(new ArrayBuffer(64));
  dv.setUint16(0, 0x3c00, true); dv.setUint16(2, 0xc000, true); dv.setUint16(4, 0x0001, true); // 1, -2, 2^-24
  assertSameFloats(dequantize(GgmlType.F16, new Uint8Array(dv.buffer, 0, 6)), new Float32Array([1, -2, 2 ** -24]), 'F16');
  dv.setUint16(0, 0x3f80, true); dv.setUint16(2, 0xc040, true); // bf16 1.0, -3.0
  assertSameFloats(dequantize(GgmlType.BF16, new Uint8Array(dv.buffer, 0, 4)), new Float32Array([1, -3]), 'BF16');
  dv.setFloat64(0, 0.1, true); dv.setFloat64(8, -1e300, true);
  assertSameFloats(dequantize(GgmlType.F64, new Uint8Array(dv.buffer, 0, 16)), new Float32Array([0.1, -Infinity]), 'F64');
  dv.setInt8(0, -5); dv.setInt8(1, 127);
  assertSameFloats(dequantize(GgmlType.I8, new Uint8Array(dv.buffer, 0, 2)), new Float32Array([-5, 127]), 'I8');
  dv.setInt16(0, -300, true);
  assertSameFloats(dequantize(GgmlType.I16, new Uint8Array(dv.buffer, 0, 2)), new Float32Array([-300]), 'I16');
  dv.setInt32(0, -70000, true);
  assertSameFloats(dequantize(GgmlType.I32, new Uint8Array(dv.buffer, 0, 4)), new Float32Array([-70000]), 'I32');
  dv.setBigInt64(0, -(2n ** 40n), true);
  assertSameFloats(dequantize(GgmlType.I64, new Uint8Array(dv.buffer, 0, 8)), new Float32Array([-(2 ** 40)]), 'I64');
});

test('undecodable and unknown types are refused', () => {
  assert.throws(() => dequantize(GgmlType.IQ2_XXS, new Uint8Array(66)), /IQ2_XXS/);
  assert.throws(() => dequantize(200, new Uint8Array(4)), /unknown ggml type id 200/);
  assert.throws(() => dequantize(GgmlType.Q4_K, new Uint8Array(143)), /whole number/);
});

// ---------- the reference Q8_0 quantizer ----------

test('quantizeQ8_0 reproduces the Q8_0 fixtures byte for byte from the F32 files', async () => {
  const pairs: Array<[string, string]> = [
    ['pico/pico_f32.gguf', 'pico/pico_q8_0.gguf'],
    ['real/stories260K.gguf', 'stories260k/stories260K_q8_0.gguf'],
  ];
  let checked = 0;
  for (const [f32Path, q8Path] of pairs) {
    const f32 = await openGguf(FIX + f32Path);
    const q8 = await openGguf(FIX + q8Path);
    try {
      for (const t of q8.tensors) {
        if (t.dtype !== 'Q8_0') continue;
        const x = await f32.get(t.name)!.read();
        const mine = quantizeQ8_0(x);
        const theirs = await t.readRaw();
        assert.equal(mine.length, theirs.length, t.name);
        assert.ok(Buffer.from(mine).equals(Buffer.from(theirs)), `${q8Path} ${t.name}: quantizeQ8_0 differs from the file's bytes`);
        checked++;
      }
    } finally {
      await f32.close();
      await q8.close();
    }
  }
  assert.equal(checked, 19 + 32, 'Q8_0 tensors compared (pico 19, stories 32)');
});

test('quantizeQ8_0: d = amax/127 in f16, ties round away from zero, error <= d/2 + 127*|d - f16(d)|', () => {
  // amax 127 -> d = 1 exactly: 2.5 -> 3 and -2.5 -> -3 (C roundf), 0.5 -> 1, -0.49 -> 0
  const x = new Float32Array(32);
  x.set([127, 2.5, -2.5, 0.5, -0.49, -127, 1.5]);
  const b = quantizeQ8_0(x);
  assert.equal(b[0] | (b[1] << 8), 0x3c00, 'd = 1.0 as f16');
  const q = Array.from(new Int8Array(b.buffer, 2, 32));
  assert.deepEqual(q.slice(0, 7), [127, 3, -3, 1, 0, -127, 2]);
  assert.deepEqual(q.slice(7), new Array(25).fill(0));

  const zero = quantizeQ8_0(new Float32Array(64));
  assert.ok(zero.every((v) => v === 0), 'an all-zero block is d = 0, q = 0');

  assert.throws(() => quantizeQ8_0(new Float32Array(31)), /multiple of the block size 32/);

  const r = rng(99);
  const v = new Float32Array(32 * 200);
  for (let i = 0; i < v.length; i++) v[i] = (r() - 0.5) * Math.pow(10, Math.floor(i / 32) % 7 - 4);
  const bytes = quantizeQ8_0(v);
  const back = dequantize(GgmlType.Q8_0, bytes);
  for (let blk = 0; blk < 200; blk++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(v[blk * 32 + j]));
    const d = amax / 127;
    const dStored = halfValue(u16At(bytes, blk * 34));
    const bound = d / 2 + 127 * Math.abs(d - dStored) + 1e-6 * amax;
    for (let j = 0; j < 32; j++) {
      const err = Math.abs(back[blk * 32 + j] - v[blk * 32 + j]);
      assert.ok(err <= bound, `block ${blk} element ${j}: error ${err} > bound ${bound}`);
    }
  }
});
