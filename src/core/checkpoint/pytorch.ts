import type { Checkpoint, ReadOptions, TensorEntry } from './types';
import { CheckpointError, formatBytes } from './errors';
import { FileAccessor } from './fileAccessor';
import { BaseCheckpoint, groupOf, product } from './base';
import { decodeDense } from './dtype';
import { ZipArchive, ZIP_STORED, type ZipEntry } from './zip';
import {
  PickleDict, PickleGlobal, PickledPersistent, PickledTensor, PickleTuple, unpickle, type PickleValue,
} from './pickle';
import { contiguousStrides, gatherStrided, isContiguous, maxRelativeIndex } from './strided';
import { openNpz } from './npz';

/**
 * PyTorch zip checkpoints (`torch.save`, PyTorch >= 1.6): a zip whose `<archive>/data.pkl` is a pickle
 * of the state dict and whose `<archive>/data/<key>` entries hold the raw bytes of each storage.
 * The pickle names each storage through a persistent id
 * `('storage', torch.FloatStorage, '<key>', 'cpu', numel)`, and each tensor as a view of a storage:
 * `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`.
 *
 * The pickle is interpreted by the restricted unpickler in pickle.ts (nothing from the file is
 * executed). Storage entries are stored uncompressed by torch, so a contiguous view is a plain byte
 * range of the file; other views are gathered on read().
 */

/** Storage class -> our dtype name. */
const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', DoubleStorage: 'F64',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};
const ELEMENT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** The pickle is small (names and shapes); a bigger one is not a state dict we should hold. */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
/** Wrapper keys of training checkpoints whose value is the model's state dict. */
const NESTING_KEYS = ['state_dict', 'model', 'model_state_dict', 'module'];
const MAX_DEPTH = 64;
const MAX_VALUES_IN_METADATA = 200;

interface StorageRef {
  key: string;
  dtype: string;
  elementSize: number;
  location: string;
  numel: number;
  entry: ZipEntry;
}

export async function openPytorch(path: string): Promise<Checkpoint> {
  const fa = await FileAccessor.open(path);
  let keepOpen = false;
  try {
    const zip = await ZipArchive.open(fa);
    const pkl = findDataPkl(zip);
    if (!pkl) {
      if (zip.entries.some((e) => e.name.endsWith('.npy'))) {
        await fa.close();
        return openNpz(path);
      }
      throw new CheckpointError(path, `zip archive has no <archive>/data.pkl (not a torch.save checkpoint) and no .npy entries (not an .npz); entries: ${zip.entries.slice(0, 5).map((e) => e.name).join(', ')}${zip.entries.length > 5 ? ', ...' : ''}`);
    }
    const ckpt = await buildCheckpoint(path, fa, zip, pkl.entry, pkl.prefix);
    keepOpen = true;
    return ckpt;
  } finally {
    if (!keepOpen) await fa.close();
  }
}

/** `<prefix>/data.pkl` at the top level of the archive (torch names prefix after the file's stem). */
function findDataPkl(zip: ZipArchive): { entry: ZipEntry; prefix: string } | undefined {
  const candidates = zip.entries.filter((e) => /^([^/]+\/)?data\.pkl$/.test(e.name));
  if (candidates.length === 0) return undefined;
  // Prefer the one with a sibling data/ folder; then the shortest name.
  const withData = candidates.filter((c) => {
    const prefix = c.name.slice(0, -'data.pkl'.length);
    return zip.entries.some((e) => e.name.startsWith(`${prefix}data/`));
  });
  const pick = (withData.length ? withData : candidates).sort((a, b) => a.name.length - b.name.length)[0];
  const prefix = pick.name.slice(0, -'data.pkl'.length).replace(/\/$/, '');
  return { entry: pick, prefix };
}

async function buildCheckpoint(path: string, fa: FileAccessor, zip: ZipArchive, pklEntry: ZipEntry, prefix: string): Promise<Checkpoint> {
  const dir = prefix ? `${prefix}/` : '';
  const isTorchScript = zip.entries.some((e) => e.name === `${dir}constants.pkl` || e.name.startsWith(`${dir}code/`));
  const pklBytes = await zip.readEntry(pklEntry, { maxBytes: MAX_PICKLE_BYTES });

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: PickleValue, offset: number): StorageRef => {
    const bad = (why: string) => new CheckpointError(path, `${pklEntry.name} byte ${formatBytes(offset)}: persistent id ${why}; expected ('storage', torch.<Type>Storage, key, location, numel)`);
    if (!(pid instanceof PickleTuple) || pid.items.length < 5) throw bad('is not a 5-tuple');
    const [tag, type, key, location, numel] = pid.items;
    if (tag !== 'storage') throw bad(`has tag ${JSON.stringify(String(tag))}`);
    if (!(type instanceof PickleGlobal)) throw bad('has no storage class');
    const dtype = STORAGE_DTYPES[type.name];
    if (type.module !== 'torch' || !dtype) throw bad(`names unsupported storage class ${type.qualified}`);
    if (typeof key !== 'string') throw bad('has a non-string key');
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw bad('has an invalid element count');
    const elementSize = ELEMENT_BYTES[dtype];
    const known = storages.get(key);
    if (known) {
      if (known.dtype !== dtype || known.numel !== numel) throw bad(`for storage ${key} disagrees with an earlier one (${known.dtype} x ${known.numel} vs ${dtype} x ${numel})`);
      return known;
    }
    const entryName = `${dir}data/${key}`;
    const entry = zip.get(entryName);
    if (!entry) throw new CheckpointError(path, `${pklEntry.name} byte ${formatBytes(offset)}: storage ${key} has no zip entry "${entryName}"`);
    if (numel * elementSize > entry.uncompressedSize) {
      throw new CheckpointError(path, `storage ${key} (${dtype} x ${formatBytes(numel)} = ${formatBytes(numel * elementSize)} bytes) is larger than its zip entry "${entryName}" (${formatBytes(entry.uncompressedSize)} bytes)`, { offset: entry.centralOffset });
    }
    zip.checkReadable(entry);
    const ref: StorageRef = { key, dtype, elementSize, location: typeof location === 'string' ? location : '?', numel, entry };
    storages.set(key, ref);
    return ref;
  };

  let root: PickleValue;
  try {
    root = unpickle(pklBytes, { file: path, source: pklEntry.name, persistentLoad });
  } catch (e) {
    if (e instanceof CheckpointError && isTorchScript) {
      const msg = e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message;
      throw new CheckpointError(path, `${msg} (this is a TorchScript archive from torch.jit.save, which holds code; save the model's state_dict() with torch.save instead)`, { cause: e });
    }
    throw e;
  }

  const { tensors: found, values, nestedUnder, ignoredKeys } = collectTensors(path, root);

  // Resolve every storage's data offset once (one small local-header read each).
  const storageList = [...storages.values()];
  const dataOffsets = new Map<StorageRef, number>();
  for (let i = 0; i < storageList.length; i += 64) {
    const batch = storageList.slice(i, i + 64);
    const offs = await Promise.all(batch.map((s) => zip.dataOffset(s.entry)));
    batch.forEach((s, j) => dataOffsets.set(s, offs[j]));
  }

  let byteorder = 'little';
  const boEntry = zip.get(`${dir}byteorder`);
  if (boEntry) byteorder = new TextDecoder().decode(await zip.readEntry(boEntry, { maxBytes: 16 })).trim();
  if (byteorder !== 'little' && byteorder !== 'big') throw new CheckpointError(path, `${dir}byteorder says "${byteorder}", expected "little" or "big"`);
  const bigEndian = byteorder === 'big';
  let version: string | undefined;
  const vEntry = zip.get(`${dir}version`) ?? zip.get(`${dir}.data/version`);
  if (vEntry) version = new TextDecoder().decode(await zip.readEntry(vEntry, { maxBytes: 64 })).trim();

  const useCount = new Map<StorageRef, number>();
  const entries: TensorEntry[] = [];
  for (const { name, tensor } of found) {
    const storage = tensor.storage.value as StorageRef;
    useCount.set(storage, (useCount.get(storage) ?? 0) + 1);
    entries.push(makeEntry(path, zip, name, tensor, storage, dataOffsets.get(storage)!, bigEndian));
  }
  const tensorsSharingStorage = [...useCount.values()].filter((n) => n > 1).reduce((a, b) => a + b, 0);
  const compressedStorages = storageList.filter((s) => s.entry.method !== ZIP_STORED).length;

  const metadata: Record<string, unknown> = {
    archive: prefix,
    byteorder,
    storages: storages.size,
    tensorsSharingStorage,
  };
  if (version !== undefined) metadata.version = version;
  if (nestedUnder) metadata.nestedUnder = nestedUnder;
  if (ignoredKeys.length) metadata.ignoredKeys = ignoredKeys;
  if (compressedStorages) metadata.compressedStorages = compressedStorages;
  if (zip.zip64) metadata.zip64 = true;
  if (Object.keys(values).length) metadata.values = values;

  return new BaseCheckpoint('pytorch', path, [path], fa.size, entries, metadata, 'PyTorch zip (torch.save)', () => fa.close());
}

function makeEntry(path: string, zip: ZipArchive, name: string, t: PickledTensor, s: StorageRef, dataOffset: number, bigEndian: boolean): TensorEntry {
  const { size, stride, storageOffset } = t;
  const bad = (why: string) => new CheckpointError(path, `${why} (view built at byte ${formatBytes(t.pickleOffset)} of the pickle)`, { tensor: name });
  for (let k = 0; k < size.length; k++) {
    if (size[k] < 0 || stride[k] < 0) throw bad(`size ${fmt(size)} / stride ${fmt(stride)} has a negative entry`);
  }
  if (storageOffset < 0) throw bad(`negative storage offset ${storageOffset}`);
  const numel = product(size);
  if (!Number.isSafeInteger(numel)) throw bad(`shape ${fmt(size)} has too many elements`);
  const span = maxRelativeIndex(size, stride); // -1 for an empty view
  const last = storageOffset + span;
  if (!Number.isSafeInteger(last) || last >= s.numel) {
    throw bad(`view (offset ${storageOffset}, size ${fmt(size)}, stride ${fmt(stride)}) reaches element ${formatBytes(last)} of storage ${s.key}, which has ${formatBytes(s.numel)} elements`);
  }
  const es = s.elementSize;
  const contiguous = isContiguous(size, stride);
  const touched = span < 0 ? 0 : (span + 1) * es; // bytes of the storage the view spans
  const start = storageOffset * es; // byte offset of the view inside the storage
  const stored = s.entry.method === ZIP_STORED;
  const effectiveStride = contiguous ? contiguousStrides(size) : stride;

  /** The view's bytes in row-major order, as stored (byte order of the archive). */
  const readViewBytes = async (opts?: ReadOptions): Promise<Uint8Array> => {
    if (numel === 0) return new Uint8Array(0);
    let region: Uint8Array;
    if (stored) {
      region = await zip.readStoredRange(s.entry, start, touched, { signal: opts?.signal, tensor: name });
    } else {
      const whole = await zip.readEntry(s.entry, { signal: opts?.signal, tensor: name });
      region = whole.subarray(start, start + touched);
    }
    return contiguous ? region : gatherStrided(region, es, size, effectiveStride);
  };

  return {
    name,
    dtype: s.dtype,
    shape: [...size],
    params: numel,
    file: path,
    // A deflated storage has no direct byte range: point at its compressed data instead.
    byteOffset: stored ? dataOffset + start : dataOffset,
    byteLength: stored ? touched : s.entry.compressedSize,
    group: groupOf(name),
    async read(opts?: ReadOptions): Promise<Float32Array> {
      const bytes = await readViewBytes(opts);
      return decodeDense(bytes, s.dtype, numel, bigEndian);
    },
    readRaw: readViewBytes,
  };
}

/**
 * Flattens the unpickled object into named tensors: nested dicts join keys with '.', lists and tuples
 * use the index. A training checkpoint {"state_dict": {...}, "epoch": 3} is unwrapped so names match
 * the model's own state dict.
 */
function collectTensors(path: string, root: PickleValue): {
  tensors: Array<{ name: string; tensor: PickledTensor }>;
  values: Record<string, unknown>;
  nestedUnder?: string;
  ignoredKeys: string[];
} {
  let nestedUnder: string | undefined;
  const ignoredKeys: string[] = [];
  let start = root;
  if (root instanceof PickleDict && ![...root.map.values()].some((v) => v instanceof PickledTensor)) {
    for (const k of NESTING_KEYS) {
      const v = root.map.get(k);
      if (v instanceof PickleDict && hasTensor(v, 0, new Set())) {
        nestedUnder = k;
        start = v;
        for (const [other, ov] of root.map) if (other !== k && hasTensor(ov, 0, new Set())) ignoredKeys.push(String(other));
        break;
      }
    }
  }
  const tensors: Array<{ name: string; tensor: PickledTensor }> = [];
  const values: Record<string, unknown> = {};
  let valueCount = 0;
  // Each container is walked once: a pickle can share one list under many keys (through the memo)
  // and nest such sharing to make an exponentially large tree out of a few bytes.
  const visited = new Set<object>();
  const walk = (v: PickleValue, name: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new CheckpointError(path, `state dict nests deeper than ${MAX_DEPTH} levels at "${name}"`);
    if (v instanceof PickledTensor) {
      tensors.push({ name: name || 'tensor', tensor: v });
      return;
    }
    const children = childrenOf(v);
    if (children) {
      if (visited.has(v as object)) return;
      visited.add(v as object);
      for (const [k, c] of children) walk(c, name ? `${name}.${k}` : k, depth + 1);
      return;
    }
    addValue(name, v);
  };
  /** Plain values (epoch, learning rate, a run name) go to metadata, bounded in count and length. */
  const addValue = (name: string, v: PickleValue): void => {
    if (valueCount >= MAX_VALUES_IN_METADATA) return;
    if (v === null || typeof v === 'number' || typeof v === 'boolean') values[name] = v;
    else if (typeof v === 'bigint') values[name] = v.toString();
    else if (typeof v === 'string') values[name] = v.length > 1000 ? `${v.slice(0, 1000)}...` : v;
    else return;
    valueCount++;
  };
  walk(start, '', 0);
  // A training checkpoint's own scalars ({"epoch": 7, "state_dict": ...}) are worth showing too.
  if (nestedUnder && root instanceof PickleDict) for (const [k, v] of root.map) addValue(String(k), v);
  if (tensors.length === 0 && !(start instanceof PickleDict || Array.isArray(start) || start instanceof PickleTuple)) {
    throw new CheckpointError(path, 'the pickle holds no tensors and no dict of tensors');
  }
  return { tensors, values, nestedUnder, ignoredKeys };
}

function childrenOf(v: PickleValue): Array<[string, PickleValue]> | undefined {
  if (v instanceof PickleDict) return [...v.map].map(([k, c]) => [String(k), c]);
  if (Array.isArray(v)) return v.map((c, i) => [String(i), c]);
  if (v instanceof PickleTuple) return v.items.map((c, i) => [String(i), c]);
  return undefined;
}

function hasTensor(v: PickleValue, depth: number, seen: Set<object>): boolean {
  if (v instanceof PickledTensor) return true;
  const ch = childrenOf(v);
  if (!ch || depth > MAX_DEPTH || seen.has(v as object)) return false;
  seen.add(v as object);
  return ch.some(([, c]) => hasTensor(c, depth + 1, seen));
}

function fmt(a: readonly number[]): string {
  return `[${a.join(', ')}]`;
}

// Re-exported for tests and other readers that meet a torch storage persistent id.
export { STORAGE_DTYPES, PickledPersistent };
