/**
 * Builders for hand-made zip archives and pickles used by the zip / pickle / pytorch / npz tests:
 * byte-exact control over names, methods, Zip64 records and opcodes, which no real writer gives.
 */
import { deflateSync } from 'fflate';
import { crc32 } from '../../../src/core/checkpoint/zip';

export interface BuildEntry {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflate. */
  method?: number;
  flags?: number;
  /** Extra bytes in the LOCAL header only (so local and central lengths differ, as torch writes). */
  localExtra?: Uint8Array;
}

export interface BuildOptions {
  /** Write 0xFFFFFFFF in the 32-bit fields and the real values in Zip64 extra fields and records. */
  zip64?: boolean;
  comment?: string;
}

/** Builds a complete zip archive in memory. */
export function buildZip(entries: BuildEntry[], opts: BuildOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const e of entries) {
    const method = e.method ?? 0;
    const body = method === 8 ? deflateSync(e.data) : e.data;
    const name = enc.encode(e.name);
    const crc = crc32(e.data);
    const localExtra = e.localExtra ?? new Uint8Array(0);
    const local = new Uint8Array(30 + name.length + localExtra.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, e.flags ?? 0, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, localExtra.length, true);
    local.set(name, 30);
    local.set(localExtra, 30 + name.length);
    const localOffset = offset;
    parts.push(local, body);
    offset += local.length + body.length;

    const z64 = opts.zip64 ? new Uint8Array(4 + 24) : new Uint8Array(0);
    if (opts.zip64) {
      const zv = new DataView(z64.buffer);
      zv.setUint16(0, 0x0001, true);
      zv.setUint16(2, 24, true);
      zv.setBigUint64(4, BigInt(e.data.length), true);
      zv.setBigUint64(12, BigInt(body.length), true);
      zv.setBigUint64(20, BigInt(localOffset), true);
    }
    const c = new Uint8Array(46 + name.length + z64.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, 45, true);
    cv.setUint16(8, e.flags ?? 0, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, opts.zip64 ? 0xffffffff : body.length, true);
    cv.setUint32(24, opts.zip64 ? 0xffffffff : e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, z64.length, true);
    cv.setUint32(42, opts.zip64 ? 0xffffffff : localOffset, true);
    c.set(name, 46);
    c.set(z64, 46 + name.length);
    central.push(c);
  }
  const cdOffset = offset;
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  parts.push(...central);
  offset += cdSize;
  if (opts.zip64) {
    const rec = new Uint8Array(56);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setUint16(12, 45, true);
    rv.setUint16(14, 45, true);
    rv.setBigUint64(24, BigInt(entries.length), true);
    rv.setBigUint64(32, BigInt(entries.length), true);
    rv.setBigUint64(40, BigInt(cdSize), true);
    rv.setBigUint64(48, BigInt(cdOffset), true);
    const loc = new Uint8Array(20);
    const locv = new DataView(loc.buffer);
    locv.setUint32(0, 0x07064b50, true);
    locv.setBigUint64(8, BigInt(offset), true);
    locv.setUint32(16, 1, true);
    parts.push(rec, loc);
    offset += 76;
  }
  const comment = enc.encode(opts.comment ?? '');
  const eocd = new Uint8Array(22 + comment.length);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, opts.zip64 ? 0xffff : entries.length, true);
  ev.setUint16(10, opts.zip64 ? 0xffff : entries.length, true);
  ev.setUint32(12, opts.zip64 ? 0xffffffff : cdSize, true);
  ev.setUint32(16, opts.zip64 ? 0xffffffff : cdOffset, true);
  ev.setUint16(20, comment.length, true);
  eocd.set(comment, 22);
  parts.push(eocd);
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let p = 0;
  for (const part of parts) { out.set(part, p); p += part.length; }
  return out;
}

/** A tiny assembler for pickle opcodes (protocol 2 binary forms). */
export class PickleWriter {
  private readonly bytes: number[] = [];
  private readonly enc = new TextEncoder();
  op(...codes: number[]): this { this.bytes.push(...codes); return this; }
  proto(v = 2): this { return this.op(0x80, v); }
  mark(): this { return this.op(0x28); }
  stop(): this { return this.op(0x2e); }
  emptyDict(): this { return this.op(0x7d); }
  emptyTuple(): this { return this.op(0x29); }
  tuple(): this { return this.op(0x74); }
  tuple1(): this { return this.op(0x85); }
  tuple2(): this { return this.op(0x86); }
  reduce(): this { return this.op(0x52); }
  setitem(): this { return this.op(0x73); }
  setitems(): this { return this.op(0x75); }
  newfalse(): this { return this.op(0x89); }
  binpersid(): this { return this.op(0x51); }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op(0x4b, v);
    if (v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    return this.op(0x4a, ...b);
  }
  str(s: string): this {
    const b = this.enc.encode(s);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, b.length, true);
    return this.op(0x58, ...len, ...b);
  }
  shortStr(s: string): this {
    const b = this.enc.encode(s);
    return this.op(0x8c, b.length, ...b);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...this.enc.encode(`${module}\n${name}\n`));
  }
  stackGlobal(module: string, name: string): this {
    return this.shortStr(module).shortStr(name).op(0x93);
  }
  /** The bytes so far; `at()` gives the offset of the next opcode. */
  at(): number { return this.bytes.length; }
  build(): Uint8Array { return new Uint8Array(this.bytes); }

  /**
   * Appends `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` for a storage
   * persistent id ('storage', torch.<type>, key, 'cpu', numel).
   */
  tensor(storageType: string, key: string, numel: number, offset: number, size: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', storageType).str(key).str('cpu').int(numel).tuple().binpersid();
    this.int(offset);
    this.mark(); for (const s of size) this.int(s); this.tuple();
    this.mark(); for (const s of stride) this.int(s); this.tuple();
    this.newfalse().global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
  }
}

/** A torch.save-shaped archive: `<prefix>/data.pkl`, `<prefix>/data/<key>`, `<prefix>/version`. */
export function buildTorchZip(prefix: string, pickle: Uint8Array, storages: Record<string, Uint8Array>, opts: BuildOptions & { method?: number } = {}): Uint8Array {
  const entries: BuildEntry[] = [{ name: `${prefix}/data.pkl`, data: pickle }];
  for (const [k, v] of Object.entries(storages)) entries.push({ name: `${prefix}/data/${k}`, data: v, method: opts.method });
  entries.push({ name: `${prefix}/version`, data: new TextEncoder().encode('3\n') });
  return buildZip(entries, opts);
}

export function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
