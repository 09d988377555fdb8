import { CheckpointError, formatBytes } from './errors';

/**
 * A restricted unpickler for PyTorch state dicts (pickle protocols 2-5).
 *
 * Python's pickle is a small stack machine whose GLOBAL/STACK_GLOBAL opcodes import any callable and
 * whose REDUCE/BUILD/NEWOBJ opcodes call it: loading an untrusted pickle runs arbitrary code. This
 * interpreter never imports or calls anything. It knows only the opcodes a state dict uses, and an
 * allow-list of globals that it replaces with pure data: `_rebuild_tensor_v2(...)` becomes a
 * `PickledTensor` record, `OrderedDict()` a `PickleDict`, a storage class a `PickleGlobal` name. Any
 * other global is refused at the opcode that names it, before anything could be applied to it.
 *
 * Bounds: every opcode consumes at least one byte, so the loop ends after at most `bytes.length`
 * steps; the stack, the memo and the number of marks are capped; lengths are checked against the
 * bytes left before anything is sliced.
 */

/** A Python global the pickle named and we allowed, e.g. `torch.FloatStorage`. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** A dict or OrderedDict; keys keep insertion order like Python's. */
export class PickleDict {
  readonly map = new Map<PickleKey, PickleValue>();
  /** State applied by BUILD (e.g. a state dict's `_metadata`): kept, never interpreted as code. */
  state?: PickleValue;
}

/** What `persistent_load` returned for a BINPERSID; opaque to the unpickler. */
export class PickledPersistent {
  constructor(readonly value: unknown) {}
}

/**
 * `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata])` as data: element (i_0..i_{n-1}) of the view lives at storage element
 * `storageOffset + sum_k i_k * stride_k`.
 */
export class PickledTensor {
  constructor(
    readonly storage: PickledPersistent,
    readonly storageOffset: number,
    readonly size: number[],
    readonly stride: number[],
    /** Byte offset of the REDUCE opcode in the pickle (for error messages). */
    readonly pickleOffset: number,
  ) {}
}

/** Any other allowed object that we keep but do not interpret (torch.device('cpu'), a layout...). */
export class PickleObject {
  constructor(readonly global: PickleGlobal, readonly args: PickleValue[]) {}
}

export type PickleKey = string | number | bigint | boolean | null;
export type PickleValue =
  | PickleKey
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | PickleGlobal
  | PickledPersistent
  | PickledTensor
  | PickleObject;

/** The globals a state dict may name. Everything else is refused. */
export const STORAGE_GLOBALS = [
  'FloatStorage', 'HalfStorage', 'BFloat16Storage', 'DoubleStorage', 'LongStorage', 'IntStorage',
  'ShortStorage', 'CharStorage', 'ByteStorage', 'BoolStorage',
] as const;
const REBUILD_TENSOR = new Set(['torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor']);
const REBUILD_PARAMETER = new Set(['torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);
const ALLOWED_GLOBALS = new Set<string>([
  ...REBUILD_TENSOR, ...REBUILD_PARAMETER,
  'collections.OrderedDict',
  ...STORAGE_GLOBALS.map((s) => `torch.${s}`),
  'torch.serialization._get_layout',
  'torch.device',
]);

export function isAllowedGlobal(module: string, name: string): boolean {
  return ALLOWED_GLOBALS.has(`${module}.${name}`);
}

export interface UnpickleOptions {
  /** The checkpoint file (for CheckpointError). */
  file: string;
  /** Where the pickle lives, e.g. `archive/data.pkl` (named in every message). */
  source: string;
  /** Called for BINPERSID with the persistent id; whatever it returns is wrapped as PickledPersistent. */
  persistentLoad?: (pid: PickleValue, offset: number) => unknown;
  maxStack?: number;
  maxMemo?: number;
}

const DEFAULT_MAX_STACK = 1 << 20;
const DEFAULT_MAX_MEMO = 1 << 22;
const MAX_LONG_BYTES = 64;

class Mark {
  private constructor() {}
  static readonly instance = new Mark();
}
type Slot = PickleValue | Mark;

/** Runs the restricted unpickler over `bytes` and returns the object STOP leaves on the stack. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): PickleValue {
  const { file, source } = opts;
  const maxStack = opts.maxStack ?? DEFAULT_MAX_STACK;
  const maxMemo = opts.maxMemo ?? DEFAULT_MAX_MEMO;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let op = 0; // offset of the current opcode

  const fail = (msg: string): never => {
    throw new CheckpointError(file, `${source} byte ${formatBytes(op)}: ${msg}`);
  };
  const need = (n: number, what: string): void => {
    if (n < 0 || pos + n > bytes.length) fail(`${what} needs ${formatBytes(n)} bytes but the pickle ends at byte ${formatBytes(bytes.length)}`);
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    const b = bytes.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const u8 = (): number => { need(1, 'argument'); return bytes[pos++]; };
  const u16 = (): number => { need(2, 'argument'); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4, 'argument'); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4, 'argument'); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const u64 = (what: string): number => {
    need(8, what);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`${what} of ${v} bytes exceeds the pickle`);
    return Number(v);
  };
  const line = (what: string): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`${what}: no newline before the end of the pickle`);
    const s = String.fromCharCode(...bytes.subarray(pos, Math.min(end, pos + 1024)));
    if (end - pos > 1024) fail(`${what} is longer than 1024 bytes`);
    pos = end + 1;
    return s;
  };
  const text = (n: number): string => {
    const b = take(n, 'string');
    try {
      return utf8.decode(b);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const push = (v: PickleValue): void => {
    if (stack.length >= maxStack) fail(`stack exceeds ${formatBytes(maxStack)} items`);
    stack.push(v);
  };
  // The most recent MARK sits at index marks[top]; nothing at or below it may be popped singly.
  const floorIndex = (): number => (marks.length ? marks[marks.length - 1] + 1 : 0);
  const pop = (): PickleValue => {
    const floor = floorIndex();
    if (stack.length <= floor) fail('stack underflow');
    const v = stack.pop()!;
    if (v instanceof Mark) fail('unexpected MARK on the stack');
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const floor = floorIndex();
    if (stack.length <= floor) fail('stack underflow');
    return stack[stack.length - 1] as PickleValue;
  };
  /** Pops everything above the most recent MARK (and the mark itself). */
  const popMark = (): PickleValue[] => {
    if (!marks.length) fail('no MARK to pop to');
    const m = marks.pop()!;
    const items = stack.splice(m) as Slot[];
    items.shift(); // the Mark itself
    return items as PickleValue[];
  };
  const setMemo = (idx: number, v: PickleValue): void => {
    if (!memo.has(idx) && memo.size >= maxMemo) fail(`memo exceeds ${formatBytes(maxMemo)} entries`);
    memo.set(idx, v);
  };
  const getMemo = (idx: number): PickleValue => {
    if (!memo.has(idx)) fail(`memo key ${idx} was never stored`);
    return memo.get(idx)!;
  };
  const asKey = (k: PickleValue): PickleKey => {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return k;
    return fail('dict key is not a string, number, bool or None');
  };
  const setItems = (d: PickleValue, kv: PickleValue[]): void => {
    if (!(d instanceof PickleDict)) fail('SETITEM(S) on something that is not a dict');
    if (kv.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) (d as PickleDict).map.set(asKey(kv[i]), kv[i + 1]);
  };
  const appendItems = (l: PickleValue, items: PickleValue[]): void => {
    if (!Array.isArray(l)) fail('APPEND(S) on something that is not a list');
    if ((l as PickleValue[]).length + items.length > maxStack) fail('list grows beyond the stack limit');
    for (const it of items) (l as PickleValue[]).push(it);
  };
  const global = (module: string, name: string): PickleGlobal => {
    if (!isAllowedGlobal(module, name)) {
      throw new CheckpointError(file, `pickle asks for ${module}.${name} at byte ${formatBytes(op)} of ${source}: only state-dict globals are allowed — refusing to execute code from the file`);
    }
    return new PickleGlobal(module, name);
  };
  const smallInt = (v: PickleValue, what: string): number => {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    return fail(`${what} is not an integer`);
  };
  const intTuple = (v: PickleValue, what: string): number[] => {
    if (!(v instanceof PickleTuple) && !Array.isArray(v)) fail(`${what} is not a tuple`);
    const items = v instanceof PickleTuple ? v.items : (v as PickleValue[]);
    return items.map((x) => smallInt(x, `${what} element`));
  };
  /** Applies an allowed global to its arguments — as data, never as a call. */
  const apply = (callable: PickleValue, args: PickleValue[]): PickleValue => {
    if (!(callable instanceof PickleGlobal)) return fail('REDUCE on something that is not an allowed global');
    const g = (callable as PickleGlobal).qualified;
    if (REBUILD_TENSOR.has(g)) {
      if (args.length < 4) fail(`${g} needs at least 4 arguments, got ${args.length}`);
      if (!(args[0] instanceof PickledPersistent)) fail(`${g}: the storage argument is not a persistent storage reference`);
      const offset = smallInt(args[1], `${g} storage_offset`);
      const size = intTuple(args[2], `${g} size`);
      const stride = intTuple(args[3], `${g} stride`);
      if (size.length !== stride.length) fail(`${g}: size has ${size.length} dimensions but stride has ${stride.length}`);
      return new PickledTensor(args[0] as PickledPersistent, offset, size, stride, op);
    }
    if (REBUILD_PARAMETER.has(g)) {
      if (args.length < 1 || !(args[0] instanceof PickledTensor)) fail(`${g}: the first argument is not a tensor`);
      return args[0];
    }
    if (g === 'collections.OrderedDict') {
      const d = new PickleDict();
      if (args.length === 1) {
        const pairs = args[0];
        const items = pairs instanceof PickleTuple ? pairs.items : Array.isArray(pairs) ? pairs : fail('OrderedDict argument is not a list of pairs');
        for (const p of items as PickleValue[]) {
          const kv = p instanceof PickleTuple ? p.items : Array.isArray(p) ? p : fail('OrderedDict item is not a pair');
          if ((kv as PickleValue[]).length !== 2) fail('OrderedDict item is not a pair');
          d.map.set(asKey((kv as PickleValue[])[0]), (kv as PickleValue[])[1]);
        }
      } else if (args.length > 1) fail('OrderedDict takes at most one argument');
      return d;
    }
    // torch.device('cpu'), torch.serialization._get_layout('torch.strided'), a storage class called
    // with arguments: harmless values, kept as records.
    return new PickleObject(callable as PickleGlobal, args);
  };

  while (pos < bytes.length) {
    op = pos;
    const code = bytes[pos++];
    switch (code) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: u64('FRAME'); break; // FRAME: a hint for buffered readers; we hold the whole pickle
      case 0x2e: { // STOP
        if (marks.length) fail('STOP with an open MARK');
        if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack (expected 1)`);
        return stack[0] as PickleValue;
      }
      case 0x28: // MARK
        if (marks.length >= maxStack) fail('too many MARKs');
        marks.push(stack.length);
        if (stack.length >= maxStack) fail(`stack exceeds ${formatBytes(maxStack)} items`);
        stack.push(Mark.instance);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: case 0x8b: { // LONG1 / LONG4: little-endian two's complement
        const n = code === 0x8a ? u8() : u32();
        if (n > MAX_LONG_BYTES) fail(`integer of ${n} bytes is too long for a state dict`);
        const b = take(n, 'LONG');
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: { // BINFLOAT: 8-byte big-endian IEEE double
        need(8, 'BINFLOAT');
        push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x58: push(text(u32())); break; // BINUNICODE
      case 0x8c: push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(text(u64('BINUNICODE8'))); break; // BINUNICODE8
      case 0x54: { // BINSTRING (protocol 0-2 byte strings, decoded as latin-1 like encoding='latin1')
        const n = i32();
        const b = take(n, 'BINSTRING');
        if (n > 65536) fail('BINSTRING longer than 64 KiB');
        push(String.fromCharCode(...b));
        break;
      }
      case 0x55: push(String.fromCharCode(...take(u8(), 'SHORT_BINSTRING'))); break; // SHORT_BINSTRING
      case 0x42: push(take(u32(), 'BINBYTES').slice()); break; // BINBYTES
      case 0x43: push(take(u8(), 'SHORT_BINBYTES').slice()); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: push(take(u64('BINBYTES8'), 'BINBYTES8').slice()); break; // BINBYTES8 / BYTEARRAY8
      case 0x7d: push(new PickleDict()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(new PickleTuple([])); break; // EMPTY_TUPLE
      case 0x8f: push([]); break; // EMPTY_SET (kept as a list)
      case 0x64: { const d = new PickleDict(); setItems(d, popMark()); push(d); break; } // DICT
      case 0x6c: push(popMark()); break; // LIST
      case 0x74: push(new PickleTuple(popMark())); break; // TUPLE
      case 0x91: push(popMark()); break; // FROZENSET (kept as a list)
      case 0x85: { const a = pop(); push(new PickleTuple([a])); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(new PickleTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(new PickleTuple([a, b, c])); break; } // TUPLE3
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS (set as list)
      case 0x71: setMemo(u8(), top()); break; // BINPUT
      case 0x72: setMemo(u32(), top()); break; // LONG_BINPUT
      case 0x94: setMemo(memo.size, top()); break; // MEMOIZE
      case 0x68: push(getMemo(u8())); break; // BINGET
      case 0x6a: push(getMemo(u32())); break; // LONG_BINGET
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line('GLOBAL module');
        const name = line('GLOBAL name');
        push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL: name and module strings from the stack
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL operands are not strings');
        push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE: callable(*args) — applied as data by `apply`
        const args = pop();
        const callable = pop();
        if (!(args instanceof PickleTuple)) fail('REDUCE arguments are not a tuple');
        push(apply(callable, (args as PickleTuple).items));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        if (!(args instanceof PickleTuple)) fail('NEWOBJ arguments are not a tuple');
        push(apply(cls, (args as PickleTuple).items));
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state) — recorded, never run
        const state = pop();
        const obj = top();
        if (obj instanceof PickleDict) obj.state = state;
        else if (!(obj instanceof PickledTensor || obj instanceof PickleObject)) fail('BUILD on an object that takes no state');
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id without a persistent_load');
        push(new PickledPersistent(opts.persistentLoad!(pid, op)));
        break;
      }
      default: {
        const name = OPCODE_NAMES[code];
        fail(`unsupported pickle opcode 0x${code.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''}: not part of a state dict`);
      }
    }
  }
  return fail('pickle ends without a STOP opcode');
}

/** Names of opcodes we refuse, so the message says what the file tried. */
const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x50: 'PERSID', 0x49: 'INT', 0x4c: 'LONG',
  0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x70: 'PUT', 0x67: 'GET',
};
