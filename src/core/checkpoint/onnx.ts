/**
 * ONNX reader: a lazy tensor index over every weight an ONNX model holds —
 * `graph.initializer`, Constant nodes (their `value` tensor, or `value_float(s)` / `value_int(s)`),
 * and the same inside subgraphs (If branches, Loop/Scan bodies: attributes of type GRAPH / GRAPHS),
 * with data in `raw_data`, in the typed fields (`float_data`, `int32_data`, ...) or in external
 * files (`data_location = EXTERNAL`).
 *
 * Why a walker and not `ModelProto.decode()`: a decoded model holds every weight in memory. Here the
 * protobuf wire format is walked with protobufjs' `Reader` and each `raw_data` is recorded as an
 * absolute byte range of the file; a tensor is read only when asked. Files up to `inMemoryLimit`
 * (64 MB) are read once into memory for the walk; larger ones are walked through a sliding window of
 * bounded positional reads, so opening a 2 GB model costs a few MB whatever its size.
 *
 * Wire format (protobuf encoding spec): a message is a sequence of (tag, value); tag = field << 3 |
 * wire type; wire type 0 = varint, 1 = 8 bytes, 2 = varint length + bytes, 5 = 4 bytes.
 */
import * as nodePath from 'node:path';
import { promises as fsp } from 'node:fs';
import protobuf from 'protobufjs';
import type { Checkpoint, ReadOptions, TensorEntry, TensorGroup } from './types';
import { CheckpointError, formatBytes, throwIfAborted } from './errors';
import { FileAccessor } from './fileAccessor';
import { BaseCheckpoint, groupOf, product } from './base';
import { decodeDense, DENSE_DTYPE_BYTES } from './dtype';
import {
  OnnxAttributeType, OnnxDataLocation, onnxElementType, type OnnxElementType,
  OperatorSetIdProtoType, StringStringEntryProtoType, ValueInfoProtoType, decodeMessage,
} from './onnxProto';

export interface OnnxOpenOptions {
  /** Files up to this size are read into memory once for the walk (default 64 MB). */
  inMemoryLimit?: number;
  /** Window of each positional read when walking a larger file (default 1 MB). */
  windowBytes?: number;
}

const DEFAULT_IN_MEMORY_LIMIT = 64 * 1024 * 1024;
const DEFAULT_WINDOW = 1024 * 1024;
/** Strings and small messages we decode (names, value infos, key/value pairs) must fit in this. */
const MAX_SMALL_FIELD = 64 * 1024 * 1024;
/** Packed varint payloads up to this size are counted at open; larger ones when read. */
const COUNT_AT_OPEN_LIMIT = 4 * 1024 * 1024;
/** If -> Loop -> Scan nesting deeper than this is refused (a corrupt file must not blow the stack). */
const MAX_GRAPH_DEPTH = 32;

// Field numbers from onnx.proto.
const F = {
  model: { ir_version: 1, producer_name: 2, producer_version: 3, domain: 4, model_version: 5, doc_string: 6, graph: 7, opset_import: 8, metadata_props: 14, training_info: 20, functions: 25 },
  graph: { node: 1, name: 2, initializer: 5, doc_string: 10, input: 11, output: 12, value_info: 13, sparse_initializer: 15 },
  node: { input: 1, output: 2, name: 3, op_type: 4, attribute: 5, domain: 7 },
  attr: { name: 1, f: 2, i: 3, s: 4, t: 5, g: 6, floats: 7, ints: 8, strings: 9, tensors: 10, graphs: 11, type: 20, sparse_tensor: 22, sparse_tensors: 23 },
  tensor: { dims: 1, data_type: 2, segment: 3, float_data: 4, int32_data: 5, string_data: 6, int64_data: 7, name: 8, raw_data: 9, double_data: 10, uint64_data: 11, external_data: 13, data_location: 14 },
  sparse: { values: 1, indices: 2, dims: 3 },
} as const;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

type TypedField = 'float_data' | 'int32_data' | 'int64_data' | 'double_data' | 'uint64_data';
const TYPED_FIELDS: Record<number, { name: TypedField; wire: number; size: number }> = {
  [F.tensor.float_data]: { name: 'float_data', wire: WIRE_I32, size: 4 },
  [F.tensor.int32_data]: { name: 'int32_data', wire: WIRE_VARINT, size: 0 },
  [F.tensor.int64_data]: { name: 'int64_data', wire: WIRE_VARINT, size: 0 },
  [F.tensor.double_data]: { name: 'double_data', wire: WIRE_I64, size: 8 },
  [F.tensor.uint64_data]: { name: 'uint64_data', wire: WIRE_VARINT, size: 0 },
};
const TYPED_FIELD_NUMBER: Record<TypedField, number> = {
  float_data: F.tensor.float_data, int32_data: F.tensor.int32_data, int64_data: F.tensor.int64_data,
  double_data: F.tensor.double_data, uint64_data: F.tensor.uint64_data,
};

// ---------------------------------------------------------------------------------------------
// Byte source: the whole file in memory, or a window of positional reads.

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** protobufjs returns 64-bit varints as Long; two's complement of (high, low) gives the bigint. */
function longToBigInt(v: unknown, unsigned: boolean): bigint {
  if (typeof v === 'number') return BigInt(v);
  const l = v as { low: number; high: number };
  const u = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
  return unsigned ? u : BigInt.asIntN(64, u);
}

class WireSource {
  private buf: Uint8Array;
  private start = 0;
  private reader: protobuf.Reader;

  constructor(readonly fa: FileAccessor, whole: Uint8Array | undefined, private readonly windowBytes: number) {
    this.buf = whole ?? new Uint8Array(0);
    this.reader = protobuf.Reader.create(this.buf);
  }

  get file(): string { return this.fa.path; }
  get size(): number { return this.fa.size; }

  /** Makes [pos, pos + n) (clipped to the file) available; returns undefined when it already is. */
  ensure(pos: number, n: number): Promise<void> | undefined {
    const want = Math.max(0, Math.min(n, this.size - pos));
    if (pos >= this.start && pos + want <= this.start + this.buf.length) return undefined;
    return this.load(pos, Math.max(want, this.windowBytes));
  }

  private async load(pos: number, n: number): Promise<void> {
    const len = Math.min(n, this.size - pos);
    this.buf = await this.fa.read(pos, len, 'ONNX protobuf');
    this.start = pos;
    this.reader = protobuf.Reader.create(this.buf);
  }

  /** A protobufjs Reader positioned at absolute `pos` (which must be inside the window). */
  readerAt(pos: number): protobuf.Reader {
    this.reader.pos = pos - this.start;
    return this.reader;
  }

  readerPos(r: protobuf.Reader): number {
    return this.start + r.pos;
  }

  /** The bytes [pos, pos + len) (must have been ensured). */
  view(pos: number, len: number): Uint8Array {
    return this.buf.subarray(pos - this.start, pos - this.start + len);
  }
}

/** Where an error happened, for messages: "initializer #3", "node /h.0/attn/MatMul" ... */
interface Where { what: string; tensor?: string }

/**
 * A position in the wire stream with the few reads the walk needs. Every read is checked against
 * the end of the enclosing message, so a length that runs past its parent (or the file) is reported
 * as exactly that, and every loop advances by at least one byte (no hang on any input).
 */
class WireCursor {
  constructor(readonly src: WireSource, public pos: number) {}

  private fail(message: string, where: Where, offset = this.pos): never {
    throw new CheckpointError(this.src.file, `ONNX ${where.what}: ${message}`, { tensor: where.tensor, offset });
  }

  /** Reads a varint as a bigint (signed two's complement unless `unsigned`). */
  async varint(end: number, where: Where, unsigned = false): Promise<bigint> {
    const at = this.pos;
    const p = this.src.ensure(at, 10);
    if (p) await p;
    const r = this.src.readerAt(at);
    let v: unknown;
    try {
      v = unsigned ? r.uint64() : r.int64();
    } catch {
      if (at + 10 <= this.src.size) this.fail('malformed varint (longer than 10 bytes): corrupt protobuf', where, at);
      this.fail(`varint runs past the end of the file (${formatBytes(this.src.size)} bytes): truncated protobuf`, where, at);
    }
    const next = this.src.readerPos(r);
    if (next > end) this.fail(`varint runs past the end of its message at byte ${formatBytes(end)}: truncated or corrupt protobuf`, where, at);
    this.pos = next;
    return longToBigInt(v, unsigned);
  }

  async tag(end: number, where: Where): Promise<{ field: number; wire: number; at: number }> {
    const at = this.pos;
    const t = await this.varint(end, where, true);
    const field = Number(t >> 3n);
    const wire = Number(t & 7n);
    if (field === 0 || field > 536870911) this.fail(`invalid protobuf tag (field number ${field}): corrupt data`, where, at);
    if (wire !== WIRE_VARINT && wire !== WIRE_I64 && wire !== WIRE_LEN && wire !== WIRE_I32) {
      this.fail(`unsupported protobuf wire type ${wire} for field ${field} (ONNX uses only 0, 1, 2, 5): corrupt data`, where, at);
    }
    return { field, wire, at };
  }

  /** Reads a length prefix and returns the payload range; checks it ends inside the message. */
  async lengthDelimited(end: number, where: Where, field: number): Promise<{ start: number; length: number }> {
    const at = this.pos;
    const n = await this.varint(end, where, true);
    const start = this.pos;
    if (n > BigInt(end - start)) {
      const stop = BigInt(start) + n;
      this.fail(`field ${field} declares ${formatBytes(n)} bytes, ending at byte ${formatBytes(stop)}, past the end of its ${end === this.src.size ? `file (${formatBytes(this.src.size)} bytes)` : `enclosing message (byte ${formatBytes(end)})`}: truncated or corrupt protobuf`, where, at);
    }
    this.pos = start + Number(n);
    return { start, length: Number(n) };
  }

  async fixed(size: 4 | 8, end: number, where: Where): Promise<number> {
    const at = this.pos;
    if (at + size > end) this.fail(`a ${size}-byte value runs past the end of its message at byte ${formatBytes(end)}`, where, at);
    const p = this.src.ensure(at, size);
    if (p) await p;
    const r = this.src.readerAt(at);
    const v = size === 4 ? r.float() : r.double();
    this.pos = at + size;
    return v;
  }

  /** Skips a field's value of wire type `wire`. */
  async skip(wire: number, end: number, where: Where, field: number): Promise<void> {
    switch (wire) {
      case WIRE_VARINT: await this.varint(end, where, true); return;
      case WIRE_I64: case WIRE_I32: {
        const n = wire === WIRE_I64 ? 8 : 4;
        if (this.pos + n > end) this.fail(`field ${field} runs past the end of its message at byte ${formatBytes(end)}`, where);
        this.pos += n;
        return;
      }
      default: await this.lengthDelimited(end, where, field);
    }
  }

  /** Bytes of a small length-delimited field (names, small messages); refuses implausible sizes. */
  async bytes(start: number, length: number, where: Where): Promise<Uint8Array> {
    if (length > MAX_SMALL_FIELD) this.fail(`a ${formatBytes(length)}-byte field where a name or small message was expected (limit ${formatBytes(MAX_SMALL_FIELD)})`, where, start);
    const p = this.src.ensure(start, length);
    if (p) await p;
    return this.src.view(start, length);
  }

  async string(end: number, where: Where, field: number): Promise<string> {
    const { start, length } = await this.lengthDelimited(end, where, field);
    return utf8.decode(await this.bytes(start, length, where));
  }

  expectWire(actual: number, expected: number, field: number, name: string, where: Where, at: number): void {
    if (actual !== expected) this.fail(`field ${field} (${name}) has wire type ${actual}, expected ${expected}`, where, at);
  }
}

function safeNumber(v: bigint, file: string, what: string, where: Where, offset: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || BigInt(n) !== v) {
    throw new CheckpointError(file, `ONNX ${where.what}: ${what} ${v} is not a safe integer`, { tensor: where.tensor, offset });
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// What the walk records.

/** A TensorProto as found in the file: header fields and where its data lies, nothing copied. */
interface TensorRecord {
  msgOffset: number;
  msgLength: number;
  name: string;
  dims: number[];
  dataType: number;
  dataTypeOffset: number;
  raw?: { offset: number; length: number };
  /** Typed data fields present: element count (undefined = not counted yet) and payload span. */
  typed: Map<TypedField, { count: number | undefined; first: number; end: number }>;
  stringCount: number;
  dataLocation: number;
  external: Array<{ key: string; value: string }>;
  hasSegment: boolean;
}

type DataSource =
  | { kind: 'bytes'; fa: FileAccessor; offset: number; length: number }
  | { kind: 'typed'; fa: FileAccessor; msgOffset: number; msgLength: number; field: TypedField }
  | { kind: 'inline'; values: Float32Array; raw: Uint8Array }
  | { kind: 'unsupported'; reason: string; fa?: FileAccessor; offset?: number; length?: number };

interface PendingTensor {
  localName: string;
  graphPath: string;
  depth: number;
  origin: 'initializer' | 'constant' | 'sparse';
  seq: number;
  dtype: string;
  shape: number[];
  params: number;
  file: string;
  byteOffset: number;
  byteLength: number;
  source: DataSource;
  graph: GraphScan;
}

interface GraphScan {
  path: string;
  /** Tensor name -> the first node that consumes it (its name, else its first output). */
  consumers: Map<string, string>;
}

interface ValueInfoSummary { name: string; dtype: string; shape: Array<number | string> }

interface WalkContext {
  file: string;
  dir: string;
  mainFa: FileAccessor;
  externalFiles: Map<string, FileAccessor>;
  externalOrder: string[];
  pending: PendingTensor[];
  seq: number;
  undecodable: Array<{ name: string; dtype: string; reason: string }>;
  subgraphCount: number;
  subgraphNodeCount: number;
}

// ---------------------------------------------------------------------------------------------
// The walk.

interface ModelScan {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  opsetImports: Array<{ domain: string; version: number }>;
  metadataProps: Record<string, string>;
  graphFound: boolean;
  mainGraph?: GraphScan;
  graphName?: string;
  inputs: ValueInfoSummary[];
  outputs: ValueInfoSummary[];
  nodeCount: number;
  opTypes: Record<string, number>;
  initializerCount: number;
  constantCount: number;
  trainingInfo: boolean;
  functionCount: number;
}

async function walkModel(cur: WireCursor, ctx: WalkContext): Promise<ModelScan> {
  const end = cur.src.size;
  const where: Where = { what: 'ModelProto' };
  const scan: ModelScan = {
    opsetImports: [], metadataProps: {}, graphFound: false, inputs: [], outputs: [], nodeCount: 0, opTypes: {},
    initializerCount: 0, constantCount: 0, trainingInfo: false, functionCount: 0,
  };
  while (cur.pos < end) {
    const { field, wire, at } = await cur.tag(end, where);
    switch (field) {
      case F.model.ir_version:
        cur.expectWire(wire, WIRE_VARINT, field, 'ir_version', where, at);
        scan.irVersion = safeNumber(await cur.varint(end, where), ctx.file, 'ir_version', where, at);
        break;
      case F.model.producer_name: case F.model.producer_version: case F.model.domain: {
        cur.expectWire(wire, WIRE_LEN, field, 'string', where, at);
        const s = await cur.string(end, where, field);
        if (field === F.model.producer_name) scan.producerName = s;
        else if (field === F.model.producer_version) scan.producerVersion = s;
        else scan.domain = s;
        break;
      }
      case F.model.model_version:
        cur.expectWire(wire, WIRE_VARINT, field, 'model_version', where, at);
        scan.modelVersion = Number(await cur.varint(end, where));
        break;
      case F.model.doc_string: {
        cur.expectWire(wire, WIRE_LEN, field, 'doc_string', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        // Only the beginning: a doc string is for display.
        scan.docString = utf8.decode(await cur.bytes(start, Math.min(length, 4096), where));
        break;
      }
      case F.model.graph: {
        cur.expectWire(wire, WIRE_LEN, field, 'graph', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        if (scan.graphFound) throw new CheckpointError(ctx.file, 'ONNX ModelProto: more than one graph field', { offset: at });
        scan.graphFound = true;
        const sub = new WireCursor(cur.src, start);
        const g = await walkGraph(sub, start + length, ctx, '', 0, scan);
        scan.graphName = g.name;
        scan.mainGraph = g.graph;
        break;
      }
      case F.model.opset_import: {
        cur.expectWire(wire, WIRE_LEN, field, 'opset_import', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        const o = decodeSmall(OperatorSetIdProtoType, await cur.bytes(start, length, where), ctx.file, 'opset_import', start);
        scan.opsetImports.push({ domain: String(o.domain ?? ''), version: Number(o.version ?? 0) });
        break;
      }
      case F.model.metadata_props: {
        cur.expectWire(wire, WIRE_LEN, field, 'metadata_props', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        const kv = decodeSmall(StringStringEntryProtoType, await cur.bytes(start, length, where), ctx.file, 'metadata_props', start);
        scan.metadataProps[String(kv.key ?? '')] = String(kv.value ?? '');
        break;
      }
      case F.model.training_info:
        scan.trainingInfo = true;
        await cur.skip(wire, end, where, field);
        break;
      case F.model.functions:
        scan.functionCount++;
        await cur.skip(wire, end, where, field);
        break;
      default:
        await cur.skip(wire, end, where, field);
    }
  }
  return scan;
}

function decodeSmall(type: protobuf.Type, bytes: Uint8Array, file: string, what: string, offset: number): Record<string, unknown> {
  try {
    return decodeMessage(type, bytes);
  } catch (e) {
    throw new CheckpointError(file, `ONNX ${what}: cannot decode ${type.name} (${(e as Error).message})`, { offset, cause: e });
  }
}

interface NodeScan {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeScan[];
  offset: number;
}

interface AttributeScan {
  name: string;
  type: number;
  offset: number;
  f?: { value: number; offset: number };
  i?: { value: bigint; offset: number; length: number };
  floats: number[];
  ints: bigint[];
  listSpan?: { first: number; end: number };
  hasS: boolean;
  stringCount: number;
  tensor?: { start: number; length: number };
  sparseTensor?: { start: number; length: number };
  graphs: Array<{ start: number; length: number }>;
}

/**
 * Walks a GraphProto. Initializers become tensors; nodes are recorded (for Constant tensors, the
 * consumer map and subgraphs). `scan` is given for the main graph only (it collects the model's
 * inputs, outputs and op histogram).
 */
async function walkGraph(cur: WireCursor, end: number, ctx: WalkContext, path: string, depth: number, scan?: ModelScan): Promise<{ name: string; graph: GraphScan }> {
  if (depth > MAX_GRAPH_DEPTH) {
    throw new CheckpointError(ctx.file, `ONNX graph ${path}: subgraphs nested more than ${MAX_GRAPH_DEPTH} deep`, { offset: cur.pos });
  }
  const graph: GraphScan = { path, consumers: new Map() };
  const where: Where = { what: path ? `subgraph ${path}` : 'graph' };
  let name = '';
  let initIndex = 0;
  let nodeIndex = 0;
  const initializerNames = new Set<string>();
  const rawInputs: Array<{ start: number; length: number }> = [];
  const rawOutputs: Array<{ start: number; length: number }> = [];
  const nodes: NodeScan[] = [];
  while (cur.pos < end) {
    const { field, wire, at } = await cur.tag(end, where);
    switch (field) {
      case F.graph.name:
        cur.expectWire(wire, WIRE_LEN, field, 'name', where, at);
        name = await cur.string(end, where, field);
        break;
      case F.graph.initializer: {
        cur.expectWire(wire, WIRE_LEN, field, 'initializer', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        const w: Where = { what: `${where.what} initializer #${initIndex}` };
        const rec = await walkTensor(new WireCursor(cur.src, start), start + length, w);
        const localName = rec.name || `initializer_${initIndex}`;
        initializerNames.add(localName);
        await addTensor(ctx, graph, depth, 'initializer', localName, rec, { what: w.what, tensor: localName });
        initIndex++;
        if (scan) scan.initializerCount++;
        break;
      }
      case F.graph.sparse_initializer: {
        cur.expectWire(wire, WIRE_LEN, field, 'sparse_initializer', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        await addSparse(new WireCursor(cur.src, start), start + length, ctx, graph, depth, `sparse_initializer_${initIndex}`, { what: `${where.what} sparse_initializer` }, 'sparse_initializer');
        initIndex++;
        break;
      }
      case F.graph.node: {
        cur.expectWire(wire, WIRE_LEN, field, 'node', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        const node = await walkNode(new WireCursor(cur.src, start), start + length, { what: `${where.what} node #${nodeIndex}` });
        nodes.push(node);
        nodeIndex++;
        break;
      }
      case F.graph.input: case F.graph.output:
        cur.expectWire(wire, WIRE_LEN, field, 'value info', where, at);
        if (scan) (field === F.graph.input ? rawInputs : rawOutputs).push(await cur.lengthDelimited(end, where, field));
        else await cur.skip(wire, end, where, field);
        break;
      default:
        await cur.skip(wire, end, where, field);
    }
  }

  // Consumers first (grouping uses them), then Constant tensors, then subgraphs (depth-first).
  for (const node of nodes) {
    const label = node.name || node.outputs.find((o) => o) || node.opType;
    for (const input of node.inputs) if (input && !graph.consumers.has(input)) graph.consumers.set(input, label);
  }
  for (let k = 0; k < nodes.length; k++) {
    const node = nodes[k];
    if (scan) {
      scan.nodeCount++;
      scan.opTypes[node.opType] = (scan.opTypes[node.opType] ?? 0) + 1;
    } else {
      ctx.subgraphNodeCount++;
    }
    if (node.opType === 'Constant') {
      await addConstant(cur.src, ctx, graph, depth, node, k);
      if (scan) scan.constantCount++;
    }
    const nodeLabel = node.name || `${node.opType}_${k}`;
    for (const a of node.attributes) {
      for (let j = 0; j < a.graphs.length; j++) {
        const g = a.graphs[j];
        const subPath = `${path ? `${path}/` : ''}${nodeLabel}/${a.name}${a.graphs.length > 1 || a.type === OnnxAttributeType.GRAPHS ? `[${j}]` : ''}`;
        ctx.subgraphCount++;
        await walkGraph(new WireCursor(cur.src, g.start), g.start + g.length, ctx, subPath, depth + 1);
      }
    }
  }

  if (scan) {
    for (const r of rawInputs) {
      const v = await valueInfo(cur, r, ctx.file);
      // IR < 4 lists initializers among the inputs; they are weights, not inputs.
      if (!initializerNames.has(v.name)) scan.inputs.push(v);
    }
    for (const r of rawOutputs) scan.outputs.push(await valueInfo(cur, r, ctx.file));
  }
  return { name, graph };
}

async function valueInfo(cur: WireCursor, r: { start: number; length: number }, file: string): Promise<ValueInfoSummary> {
  const v = decodeSmall(ValueInfoProtoType, await cur.bytes(r.start, r.length, { what: 'graph input/output' }), file, 'graph input/output', r.start);
  const type = v.type as Record<string, Record<string, unknown>> | undefined;
  const tensorType = type?.tensor_type ?? type?.sparse_tensor_type;
  if (!tensorType) {
    const kind = type ? Object.keys(type).filter((k) => k !== 'denotation')[0] ?? 'unknown' : 'unknown';
    return { name: String(v.name ?? ''), dtype: kind.replace(/_type$/, ''), shape: [] };
  }
  const elem = Number(tensorType.elem_type ?? 0);
  const dims = ((tensorType.shape as Record<string, unknown> | undefined)?.dim as Array<Record<string, unknown>> | undefined) ?? [];
  return {
    name: String(v.name ?? ''),
    dtype: onnxElementType(elem)?.dtype ?? `type ${elem}`,
    shape: dims.map((d) => (d.dim_value !== undefined ? Number(d.dim_value) : d.dim_param !== undefined ? String(d.dim_param) : '?')),
  };
}

async function walkNode(cur: WireCursor, end: number, where: Where): Promise<NodeScan> {
  const node: NodeScan = { name: '', opType: '', inputs: [], outputs: [], attributes: [], offset: cur.pos };
  while (cur.pos < end) {
    const { field, wire, at } = await cur.tag(end, where);
    switch (field) {
      case F.node.input: case F.node.output: case F.node.name: case F.node.op_type: {
        cur.expectWire(wire, WIRE_LEN, field, 'string', where, at);
        const s = await cur.string(end, where, field);
        if (field === F.node.input) node.inputs.push(s);
        else if (field === F.node.output) node.outputs.push(s);
        else if (field === F.node.name) node.name = s;
        else node.opType = s;
        break;
      }
      case F.node.attribute: {
        cur.expectWire(wire, WIRE_LEN, field, 'attribute', where, at);
        const { start, length } = await cur.lengthDelimited(end, where, field);
        const w: Where = { what: `node ${node.name || node.outputs[0] || where.what} attribute` };
        node.attributes.push(await walkAttribute(new WireCursor(cur.src, start), start + length, w));
        break;
      }
      default:
        await cur.skip(wire, end, where, field);
    }
  }
  return node;
}

async function walkAttribute(cur: WireCursor, end: number, where: Where): Promise<AttributeScan> {
  const a: AttributeScan = { name: '', type: 0, offset: cur.pos, floats: [], ints: [], hasS: false, stringCount: 0, graphs: [] };
  const span = (first: number, last: number) => {
    a.listSpan = a.listSpan ? { first: a.listSpan.first, end: last } : { first, end: last };
  };
  while (cur.pos < end) {
    const { field, wire, at } = await cur.tag(end, where);
    switch (field) {
      case F.attr.name:
        cur.expectWire(wire, WIRE_LEN, field, 'name', where, at);
        a.name = await cur.string(end, where, field);
        break;
      case F.attr.type:
        cur.expectWire(wire, WIRE_VARINT, field, 'type', where, at);
        a.type = Number(await cur.varint(end, where));
        break;
      case F.attr.f: {
        cur.expectWire(wire, WIRE_I32, field, 'f', where, at);
        const offset = cur.pos;
        a.f = { value: await cur.fixed(4, end, where), offset };
        break;
      }
      case F.attr.i: {
        cur.expectWire(wire, WIRE_VARINT, field, 'i', where, at);
        const offset = cur.pos;
        const value = await cur.varint(end, where);
        a.i = { value, offset, length: cur.pos - offset };
        break;
      }
      case F.attr.s:
        a.hasS = true;
        await cur.skip(wire, end, where, field);
        break;
      case F.attr.strings:
        a.stringCount++;
        await cur.skip(wire, end, where, field);
        break;
      case F.attr.floats:
        if (wire === WIRE_LEN) {
          const { start, length } = await cur.lengthDelimited(end, where, field);
          if (length % 4 !== 0) throw new CheckpointError(cur.src.file, `ONNX ${where.what} ${a.name}: packed floats of ${length} bytes is not a multiple of 4`, { offset: start });
          const b = await cur.bytes(start, length, where);
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          for (let k = 0; k < length; k += 4) a.floats.push(dv.getFloat32(k, true));
          span(start, start + length);
        } else {
          cur.expectWire(wire, WIRE_I32, field, 'floats', where, at);
          const offset = cur.pos;
          a.floats.push(await cur.fixed(4, end, where));
          span(offset, cur.pos);
        }
        break;
      case F.attr.ints:
        if (wire === WIRE_LEN) {
          const { start, length } = await cur.lengthDelimited(end, where, field);
          const sub = new WireCursor(cur.src, start);
          while (sub.pos < start + length) a.ints.push(await sub.varint(start + length, where));
          span(start, start + length);
        } else {
          cur.expectWire(wire, WIRE_VARINT, field, 'ints', where, at);
          const offset = cur.pos;
          a.ints.push(await cur.varint(end, where));
          span(offset, cur.pos);
        }
        break;
      case F.attr.t:
        cur.expectWire(wire, WIRE_LEN, field, 't', where, at);
        a.tensor = await cur.lengthDelimited(end, where, field);
        break;
      case F.attr.sparse_tensor:
        cur.expectWire(wire, WIRE_LEN, field, 'sparse_tensor', where, at);
        a.sparseTensor = await cur.lengthDelimited(end, where, field);
        break;
      case F.attr.g: case F.attr.graphs:
        cur.expectWire(wire, WIRE_LEN, field, field === F.attr.g ? 'g' : 'graphs', where, at);
        a.graphs.push(await cur.lengthDelimited(end, where, field));
        break;
      default:
        await cur.skip(wire, end, where, field);
    }
  }
  return a;
}

/** Walks a TensorProto without copying its data. */
async function walkTensor(cur: WireCursor, end: number, where: Where): Promise<TensorRecord> {
  const rec: TensorRecord = {
    msgOffset: cur.pos, msgLength: end - cur.pos, name: '', dims: [], dataType: 0, dataTypeOffset: cur.pos,
    typed: new Map(), stringCount: 0, dataLocation: OnnxDataLocation.DEFAULT, external: [], hasSegment: false,
  };
  const w = (): Where => ({ what: where.what, tensor: rec.name || where.tensor });
  const file = cur.src.file;
  while (cur.pos < end) {
    const { field, wire, at } = await cur.tag(end, w());
    switch (field) {
      case F.tensor.dims: {
        const push = (v: bigint, offset: number) => {
          if (v < 0n) throw new CheckpointError(file, `ONNX ${where.what}: negative dimension ${v}`, { tensor: w().tensor, offset });
          rec.dims.push(safeNumber(v, file, 'dimension', w(), offset));
        };
        if (wire === WIRE_LEN) {
          const { start, length } = await cur.lengthDelimited(end, w(), field);
          const sub = new WireCursor(cur.src, start);
          while (sub.pos < start + length) { const o = sub.pos; push(await sub.varint(start + length, w()), o); }
        } else {
          cur.expectWire(wire, WIRE_VARINT, field, 'dims', w(), at);
          const o = cur.pos;
          push(await cur.varint(end, w()), o);
        }
        break;
      }
      case F.tensor.data_type:
        cur.expectWire(wire, WIRE_VARINT, field, 'data_type', w(), at);
        rec.dataTypeOffset = cur.pos;
        rec.dataType = Number(BigInt.asIntN(32, await cur.varint(end, w())));
        break;
      case F.tensor.name:
        cur.expectWire(wire, WIRE_LEN, field, 'name', w(), at);
        rec.name = await cur.string(end, w(), field);
        break;
      case F.tensor.raw_data: {
        cur.expectWire(wire, WIRE_LEN, field, 'raw_data', w(), at);
        const { start, length } = await cur.lengthDelimited(end, w(), field);
        rec.raw = { offset: start, length }; // a bytes field: the last occurrence wins
        break;
      }
      case F.tensor.string_data:
        rec.stringCount++;
        await cur.skip(wire, end, w(), field);
        break;
      case F.tensor.external_data: {
        cur.expectWire(wire, WIRE_LEN, field, 'external_data', w(), at);
        const { start, length } = await cur.lengthDelimited(end, w(), field);
        const kv = decodeSmall(StringStringEntryProtoType, await cur.bytes(start, length, w()), file, `${where.what} external_data`, start);
        rec.external.push({ key: String(kv.key ?? ''), value: String(kv.value ?? '') });
        break;
      }
      case F.tensor.data_location:
        cur.expectWire(wire, WIRE_VARINT, field, 'data_location', w(), at);
        rec.dataLocation = Number(await cur.varint(end, w()));
        break;
      case F.tensor.segment:
        rec.hasSegment = true;
        await cur.skip(wire, end, w(), field);
        break;
      default: {
        const typed = TYPED_FIELDS[field];
        if (!typed) { await cur.skip(wire, end, w(), field); break; }
        const slot = rec.typed.get(typed.name);
        let count: number | undefined;
        let first: number;
        if (wire === WIRE_LEN) {
          const { start, length } = await cur.lengthDelimited(end, w(), field);
          first = start;
          if (typed.size) {
            if (length % typed.size !== 0) throw new CheckpointError(file, `ONNX ${where.what}: packed ${typed.name} of ${formatBytes(length)} bytes is not a multiple of ${typed.size}`, { tensor: w().tensor, offset: start });
            count = length / typed.size;
          } else if (length <= COUNT_AT_OPEN_LIMIT) {
            // One varint per byte whose continuation bit is clear.
            const b = await cur.bytes(start, length, w());
            count = 0;
            for (let k = 0; k < b.length; k++) if (b[k] < 0x80) count++;
            if (length > 0 && b[length - 1] >= 0x80) throw new CheckpointError(file, `ONNX ${where.what}: packed ${typed.name} ends inside a varint`, { tensor: w().tensor, offset: start + length - 1 });
          }
        } else {
          cur.expectWire(wire, typed.wire, field, typed.name, w(), at);
          first = cur.pos;
          await cur.skip(wire, end, w(), field);
          count = 1;
        }
        if (slot) {
          slot.count = slot.count === undefined || count === undefined ? undefined : slot.count + count;
          slot.end = cur.pos;
        } else {
          rec.typed.set(typed.name, { count, first, end: cur.pos });
        }
      }
    }
  }
  return rec;
}

// ---------------------------------------------------------------------------------------------
// From records to tensor entries.

/** raw_data bytes of `params` elements; undefined for strings. 4-bit types pack two per byte. */
function expectedBytes(elem: OnnxElementType, params: number): number | undefined {
  if (elem.dtype === 'STRING') return undefined;
  if (elem.bytes === 0) return Math.ceil(params / 2);
  return params * elem.bytes;
}

function paramsOf(dims: number[], file: string, where: Where, offset: number): number {
  const p = product(dims);
  if (!Number.isSafeInteger(p)) throw new CheckpointError(file, `ONNX ${where.what}: dims [${dims.join(', ')}] hold more elements than can be addressed`, { tensor: where.tensor, offset });
  return p;
}

/** Checks an external `location` and resolves it inside the model's directory. */
function resolveExternal(ctx: WalkContext, location: string, tensor: string, offset: number): string {
  const refuse = (why: string): never => {
    throw new CheckpointError(ctx.file, `ONNX external data location "${location}" ${why}`, { tensor, offset });
  };
  if (!location) refuse('is empty');
  if (nodePath.isAbsolute(location) || /^[A-Za-z]:/.test(location) || location.startsWith('\\') || location.startsWith('/')) {
    refuse('is absolute; the ONNX spec requires a path relative to the model\'s directory');
  }
  if (location.split(/[\\/]/).some((seg) => seg === '..')) refuse('contains ".." and could point outside the model\'s directory: refused');
  const resolved = nodePath.resolve(ctx.dir, location);
  const rel = nodePath.relative(ctx.dir, resolved);
  if (rel.startsWith('..') || nodePath.isAbsolute(rel)) refuse('resolves outside the model\'s directory: refused');
  return resolved;
}

async function externalAccessor(ctx: WalkContext, resolved: string, location: string, tensor: string, offset: number): Promise<FileAccessor> {
  let fa = ctx.externalFiles.get(resolved);
  if (fa) return fa;
  try {
    await fsp.access(resolved);
  } catch {
    throw new CheckpointError(ctx.file, `ONNX external data file "${location}" not found (looked for ${resolved})`, { tensor, offset });
  }
  fa = await FileAccessor.open(resolved);
  ctx.externalFiles.set(resolved, fa);
  ctx.externalOrder.push(resolved);
  return fa;
}

function parseDecimal(value: string, key: string, ctx: WalkContext, tensor: string, offset: number): number {
  if (!/^\d+$/.test(value.trim())) throw new CheckpointError(ctx.file, `ONNX external_data ${key} "${value}" is not a non-negative integer`, { tensor, offset });
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n)) throw new CheckpointError(ctx.file, `ONNX external_data ${key} ${value} is not a safe integer`, { tensor, offset });
  return n;
}

/** Works out where a TensorProto's data lives and how to decode it; validates sizes now. */
async function resolveData(ctx: WalkContext, rec: TensorRecord, name: string, where: Where): Promise<{ elem: OnnxElementType; params: number; source: DataSource; byteOffset: number; byteLength: number; file: string }> {
  const file = ctx.file;
  const elem = onnxElementType(rec.dataType);
  if (!elem) {
    throw new CheckpointError(file, `ONNX ${where.what}: unknown data_type ${rec.dataType} (onnx.proto defines 1..24)`, { tensor: name, offset: rec.dataTypeOffset });
  }
  const params = paramsOf(rec.dims, file, { what: where.what, tensor: name }, rec.msgOffset);
  const need = expectedBytes(elem, params);
  const shapeText = `dims [${rec.dims.join(', ')}] of ${elem.onnxName}`;
  const unsupported = (reason: string, range?: { fa: FileAccessor; offset: number; length: number }) => {
    ctx.undecodable.push({ name, dtype: elem.dtype, reason });
    return { kind: 'unsupported' as const, reason, ...range };
  };

  if (rec.hasSegment) {
    return { elem, params, source: unsupported('a segmented TensorProto (TensorProto.segment) is not supported'), byteOffset: rec.msgOffset, byteLength: rec.msgLength, file };
  }

  if (rec.dataLocation === OnnxDataLocation.EXTERNAL) {
    const kv = new Map(rec.external.map((e) => [e.key, e.value]));
    const location = kv.get('location');
    if (location === undefined) throw new CheckpointError(file, 'ONNX external data without a "location" key', { tensor: name, offset: rec.msgOffset });
    const resolved = resolveExternal(ctx, location, name, rec.msgOffset);
    const fa = await externalAccessor(ctx, resolved, location, name, rec.msgOffset);
    const offset = kv.has('offset') ? parseDecimal(kv.get('offset')!, 'offset', ctx, name, rec.msgOffset) : 0;
    let length: number;
    if (kv.has('length')) {
      length = parseDecimal(kv.get('length')!, 'length', ctx, name, rec.msgOffset);
      if (need !== undefined && length !== need) {
        throw new CheckpointError(fa.path, `ONNX external data length ${formatBytes(length)} does not match ${shapeText} (${formatBytes(need)} bytes)`, { tensor: name, offset });
      }
    } else if (need !== undefined) {
      length = need;
    } else {
      length = fa.size - offset;
    }
    fa.checkRange(offset, length, `ONNX external data of ${shapeText}`, name);
    if (!elem.decodable) {
      return { elem, params, source: unsupported(`element type ${elem.onnxName} cannot be decoded to float32`, { fa, offset, length }), byteOffset: offset, byteLength: length, file: fa.path };
    }
    return { elem, params, source: { kind: 'bytes', fa, offset, length }, byteOffset: offset, byteLength: length, file: fa.path };
  }
  if (rec.dataLocation !== OnnxDataLocation.DEFAULT) {
    throw new CheckpointError(file, `ONNX ${where.what}: unknown data_location ${rec.dataLocation}`, { tensor: name, offset: rec.msgOffset });
  }

  const typedPresent = [...rec.typed.keys()];
  if (rec.raw) {
    if (typedPresent.length) throw new CheckpointError(file, `ONNX ${where.what}: both raw_data and ${typedPresent.join(', ')} are set`, { tensor: name, offset: rec.raw.offset });
    if (need !== undefined && rec.raw.length !== need) {
      throw new CheckpointError(file, `ONNX raw_data has ${formatBytes(rec.raw.length)} bytes, but ${shapeText} need ${formatBytes(need)}`, { tensor: name, offset: rec.raw.offset });
    }
    const range = { fa: ctx.mainFa, offset: rec.raw.offset, length: rec.raw.length };
    if (!elem.decodable) {
      return { elem, params, source: unsupported(`element type ${elem.onnxName} cannot be decoded to float32`, range), byteOffset: range.offset, byteLength: range.length, file };
    }
    return { elem, params, source: { kind: 'bytes', ...range }, byteOffset: range.offset, byteLength: range.length, file };
  }
  if (elem.dtype === 'STRING') {
    return { elem, params, source: unsupported('string tensors hold text, not numbers'), byteOffset: rec.msgOffset, byteLength: rec.msgLength, file };
  }
  if (typedPresent.length > 1) throw new CheckpointError(file, `ONNX ${where.what}: several typed data fields are set (${typedPresent.join(', ')})`, { tensor: name, offset: rec.msgOffset });
  if (typedPresent.length === 0) {
    if (params === 0) {
      return { elem, params, source: { kind: 'inline', values: new Float32Array(0), raw: new Uint8Array(0) }, byteOffset: rec.msgOffset, byteLength: 0, file };
    }
    throw new CheckpointError(file, `ONNX ${where.what}: no data (no raw_data, typed data or external data) for ${shapeText}`, { tensor: name, offset: rec.msgOffset });
  }
  const field = typedPresent[0];
  const slot = rec.typed.get(field)!;
  if (field !== elem.typedField) {
    throw new CheckpointError(file, `ONNX ${where.what}: ${elem.onnxName} data stored in ${field}; the spec puts it in ${elem.typedField}`, { tensor: name, offset: slot.first });
  }
  // Complex numbers take two values per element.
  const perElement = elem.dtype === 'C64' || elem.dtype === 'C128' ? 2 : 1;
  if (slot.count !== undefined && slot.count !== params * perElement) {
    throw new CheckpointError(file, `ONNX ${field} holds ${formatBytes(slot.count)} values, but ${shapeText} need ${formatBytes(params * perElement)}`, { tensor: name, offset: slot.first });
  }
  const span = { byteOffset: slot.first, byteLength: slot.end - slot.first };
  if (!elem.decodable) {
    return { elem, params, source: unsupported(`element type ${elem.onnxName} cannot be decoded to float32`), ...span, file };
  }
  return { elem, params, source: { kind: 'typed', fa: ctx.mainFa, msgOffset: rec.msgOffset, msgLength: rec.msgLength, field }, ...span, file };
}

async function addTensor(ctx: WalkContext, graph: GraphScan, depth: number, origin: PendingTensor['origin'], localName: string, rec: TensorRecord, where: Where): Promise<void> {
  const r = await resolveData(ctx, rec, localName, where);
  ctx.pending.push({
    localName, graphPath: graph.path, depth, origin, seq: ctx.seq++, dtype: r.elem.dtype, shape: rec.dims.slice(), params: r.params,
    file: r.file, byteOffset: r.byteOffset, byteLength: r.byteLength, source: r.source, graph,
  });
}

async function addSparse(cur: WireCursor, end: number, ctx: WalkContext, graph: GraphScan, depth: number, fallbackName: string, where: Where, what: string): Promise<void> {
  let values: TensorRecord | undefined;
  const dims: number[] = [];
  while (cur.pos < end) {
    const { field, wire, at } = await cur.tag(end, where);
    if (field === F.sparse.values) {
      cur.expectWire(wire, WIRE_LEN, field, 'values', where, at);
      const { start, length } = await cur.lengthDelimited(end, where, field);
      values = await walkTensor(new WireCursor(cur.src, start), start + length, where);
    } else if (field === F.sparse.dims) {
      if (wire === WIRE_LEN) {
        const { start, length } = await cur.lengthDelimited(end, where, field);
        const sub = new WireCursor(cur.src, start);
        while (sub.pos < start + length) { const o = sub.pos; dims.push(safeNumber(await sub.varint(start + length, where), ctx.file, 'dimension', where, o)); }
      } else {
        const o = cur.pos;
        dims.push(safeNumber(await cur.varint(end, where), ctx.file, 'dimension', where, o));
      }
    } else {
      await cur.skip(wire, end, where, field);
    }
  }
  const name = where.tensor ?? (values?.name || fallbackName);
  const elem = values ? onnxElementType(values.dataType) : undefined;
  const dtype = elem?.dtype ?? 'F32';
  if (dims.some((d) => d < 0)) throw new CheckpointError(ctx.file, `ONNX ${what}: negative dimension`, { tensor: name, offset: cur.pos });
  const reason = `${what} (a sparse tensor) is not supported; densify it (e.g. onnx's sparse-to-dense tools) to analyse it`;
  ctx.undecodable.push({ name, dtype, reason });
  ctx.pending.push({
    localName: name, graphPath: graph.path, depth, origin: 'sparse', seq: ctx.seq++, dtype, shape: dims,
    params: paramsOf(dims, ctx.file, { what, tensor: name }, cur.pos), file: ctx.file,
    byteOffset: values?.raw?.offset ?? values?.msgOffset ?? cur.pos, byteLength: values?.raw?.length ?? values?.msgLength ?? 0,
    source: { kind: 'unsupported', reason }, graph,
  });
}

/** Little-endian bytes and float32 values of a small list of numbers (Constant value_float(s)/int(s)). */
function inlineF32(values: number[]): { values: Float32Array; raw: Uint8Array } {
  const f = Float32Array.from(values);
  return { values: f, raw: new Uint8Array(f.buffer.slice(0)) };
}
function inlineI64(values: bigint[]): { values: Float32Array; raw: Uint8Array } {
  const b = BigInt64Array.from(values);
  return { values: Float32Array.from(values, (v) => Number(v)), raw: new Uint8Array(b.buffer) };
}

/**
 * A Constant node's output as a tensor (onnx Constant operator: exactly one of value, sparse_value,
 * value_float, value_floats, value_int, value_ints, value_string, value_strings).
 */
async function addConstant(src: WireSource, ctx: WalkContext, graph: GraphScan, depth: number, node: NodeScan, index: number): Promise<void> {
  const name = node.outputs[0] || node.name || `Constant_${index}`;
  const where: Where = { what: `Constant node ${node.name || name}`, tensor: name };
  const push = (dtype: string, shape: number[], byteOffset: number, byteLength: number, source: DataSource) => {
    ctx.pending.push({ localName: name, graphPath: graph.path, depth, origin: 'constant', seq: ctx.seq++, dtype, shape, params: product(shape), file: ctx.file, byteOffset, byteLength, source, graph });
  };
  for (const a of node.attributes) {
    switch (a.name) {
      case 'value':
        if (a.tensor) {
          const rec = await walkTensor(new WireCursor(src, a.tensor.start), a.tensor.start + a.tensor.length, where);
          await addTensor(ctx, graph, depth, 'constant', name, rec, where);
          return;
        }
        break;
      case 'sparse_value':
        if (a.sparseTensor) {
          await addSparse(new WireCursor(src, a.sparseTensor.start), a.sparseTensor.start + a.sparseTensor.length, ctx, graph, depth, name, where, 'Constant sparse_value');
          return;
        }
        break;
      case 'value_float':
        if (a.f) { push('F32', [], a.f.offset, 4, { kind: 'inline', ...inlineF32([a.f.value]) }); return; }
        break;
      case 'value_floats':
        push('F32', [a.floats.length], a.listSpan?.first ?? a.offset, a.listSpan ? a.listSpan.end - a.listSpan.first : 0, { kind: 'inline', ...inlineF32(a.floats) });
        return;
      case 'value_int':
        if (a.i) { push('I64', [], a.i.offset, a.i.length, { kind: 'inline', ...inlineI64([a.i.value]) }); return; }
        break;
      case 'value_ints':
        push('I64', [a.ints.length], a.listSpan?.first ?? a.offset, a.listSpan ? a.listSpan.end - a.listSpan.first : 0, { kind: 'inline', ...inlineI64(a.ints) });
        return;
      case 'value_string': case 'value_strings': {
        const reason = 'string constants hold text, not numbers';
        ctx.undecodable.push({ name, dtype: 'STRING', reason });
        push('STRING', a.name === 'value_string' ? [] : [a.stringCount], a.offset, 0, { kind: 'unsupported', reason });
        return;
      }
    }
  }
  throw new CheckpointError(ctx.file, `ONNX ${where.what}: no value attribute (value, value_float(s), value_int(s), value_string(s), sparse_value)`, { tensor: name, offset: node.offset });
}

// ---------------------------------------------------------------------------------------------
// Reading one tensor.

/**
 * Decodes a typed data field (float_data, int32_data, ...) into the dense little-endian bytes the
 * same tensor would have in raw_data. int32_data carries the narrow types element-wise: FLOAT16 and
 * BFLOAT16 as their 16-bit pattern, FLOAT8 as its 8-bit pattern (onnx.proto, TensorProto.int32_data).
 */
function typedToDense(bytes: Uint8Array, field: TypedField, dtype: string, params: number, file: string, tensor: string, msgOffset: number): Uint8Array {
  const size = DENSE_DTYPE_BYTES[dtype];
  // Every value takes at least one byte of the message: more elements than bytes means corrupt dims
  // (checked before allocating, so a corrupt header cannot request a huge buffer).
  if (params > bytes.length) {
    throw new CheckpointError(file, `ONNX ${field}: dims need ${formatBytes(params)} values but the TensorProto has only ${formatBytes(bytes.length)} bytes`, { tensor, offset: msgOffset });
  }
  const out = new Uint8Array(params * size);
  const dv = new DataView(out.buffer);
  const target = TYPED_FIELD_NUMBER[field];
  const r = protobuf.Reader.create(bytes);
  let n = 0;
  const fail = (message: string, at: number): never => { throw new CheckpointError(file, `ONNX ${field}: ${message}`, { tensor, offset: msgOffset + at }); };
  const put = (at: number) => {
    if (n >= params) fail(`more values than the ${formatBytes(params)} the dims need`, at);
    switch (field) {
      case 'float_data': dv.setFloat32(n * 4, r.float(), true); break;
      case 'double_data': dv.setFloat64(n * 8, r.double(), true); break;
      case 'int64_data': dv.setBigInt64(n * 8, longToBigInt(r.int64(), false), true); break;
      case 'uint64_data': {
        const v = longToBigInt(r.uint64(), true);
        if (dtype === 'U32') {
          if (v > 0xffffffffn) fail(`value ${v} does not fit UINT32`, at);
          dv.setUint32(n * 4, Number(v), true);
        } else dv.setBigUint64(n * 8, v, true);
        break;
      }
      case 'int32_data': {
        const v = r.int32();
        const range = (lo: number, hi: number) => { if (v < lo || v > hi) fail(`value ${v} does not fit ${dtype} (${lo}..${hi})`, at); };
        switch (dtype) {
          case 'I32': dv.setInt32(n * 4, v, true); break;
          case 'I16': range(-32768, 32767); dv.setInt16(n * 2, v, true); break;
          case 'U16': case 'F16': case 'BF16': range(0, 65535); dv.setUint16(n * 2, v, true); break;
          case 'I8': range(-128, 127); dv.setInt8(n, v); break;
          case 'U8': case 'BOOL': case 'F8_E4M3': case 'F8_E5M2': range(0, 255); dv.setUint8(n, v); break;
          default: fail(`cannot carry ${dtype}`, at);
        }
        break;
      }
    }
    n++;
  };
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wire = tag & 7;
      if (f !== target) { r.skipType(wire); continue; }
      if (wire === WIRE_LEN) {
        const len = r.uint32();
        const stop = r.pos + len;
        if (stop > r.len) fail('packed field runs past the end of its message', r.pos);
        while (r.pos < stop) put(r.pos);
        if (r.pos !== stop) fail('packed values overrun their field', r.pos);
      } else {
        put(r.pos);
      }
    }
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    fail(`cannot decode (${(e as Error).message})`, r.pos);
  }
  if (n !== params) fail(`holds ${formatBytes(n)} values, but the dims need ${formatBytes(params)}`, 0);
  return out;
}

class OnnxTensor implements TensorEntry {
  constructor(
    readonly name: string,
    readonly dtype: string,
    readonly shape: number[],
    readonly params: number,
    readonly file: string,
    readonly byteOffset: number,
    readonly byteLength: number,
    readonly group: TensorGroup,
    private readonly source: DataSource,
  ) {}

  /**
   * The stored bytes: raw_data / external bytes unchanged; for typed fields and Constant
   * value_float(s)/value_int(s), the dense little-endian bytes raw_data would hold.
   */
  async readRaw(opts: ReadOptions = {}): Promise<Uint8Array> {
    throwIfAborted(opts.signal);
    const s = this.source;
    switch (s.kind) {
      case 'bytes': return s.fa.read(s.offset, s.length, 'ONNX tensor data', { tensor: this.name, signal: opts.signal });
      case 'inline': return s.raw.slice();
      case 'typed': {
        const msg = await s.fa.read(s.msgOffset, s.msgLength, 'ONNX TensorProto', { tensor: this.name, signal: opts.signal });
        return typedToDense(msg, s.field, this.dtype, this.params, this.file, this.name, s.msgOffset);
      }
      case 'unsupported':
        if (s.fa && s.offset !== undefined && s.length !== undefined) return s.fa.read(s.offset, s.length, 'ONNX tensor data', { tensor: this.name, signal: opts.signal });
        throw new CheckpointError(this.file, `cannot read: ${s.reason}`, { tensor: this.name, offset: this.byteOffset });
    }
  }

  async read(opts: ReadOptions = {}): Promise<Float32Array> {
    const s = this.source;
    if (s.kind === 'unsupported') throw new CheckpointError(this.file, `cannot decode ${this.dtype}: ${s.reason}`, { tensor: this.name, offset: this.byteOffset });
    if (s.kind === 'inline') return s.values.slice();
    const bytes = await this.readRaw(opts);
    return decodeDense(bytes, this.dtype, this.params);
  }
}

// ---------------------------------------------------------------------------------------------
// Entry point.

/**
 * Exporters name node outputs `<node>_output_<k>` (`/m/Constant_12_output_0`); the suffix says
 * nothing about the model part and would read as the "output" head, so grouping ignores it.
 */
function groupingName(name: string): string {
  return name.replace(/_output_\d+$/, '');
}

/**
 * The group of an ONNX tensor: by its name (also with exporters' `__` separators read as `.`), else
 * by the first node that consumes it — exporters name weights `onnx::MatMul_123` but name the node
 * `/h.2/attn/MatMul` — else by its subgraph path. Never hidden: the fallback is 'other'.
 */
function groupOfOnnx(p: PendingTensor, main: GraphScan): TensorGroup {
  const own = groupingName(p.localName);
  const candidates = [own, own.replace(/__/g, '.'), p.graph.consumers.get(p.localName), main.consumers.get(p.localName), p.graphPath];
  for (const c of candidates) {
    if (!c) continue;
    const g = groupOf(groupingName(c));
    if (g.kind !== 'other') return g;
  }
  return { kind: 'other', label: 'other' };
}

/** Opens an ONNX model lazily: walks the protobuf, records every weight's byte range, reads none. */
export async function openOnnx(path: string, opts: OnnxOpenOptions = {}): Promise<Checkpoint> {
  const abs = nodePath.resolve(path);
  const mainFa = await FileAccessor.open(abs);
  const ctx: WalkContext = {
    file: abs, dir: nodePath.dirname(abs), mainFa, externalFiles: new Map(), externalOrder: [], pending: [], seq: 0,
    undecodable: [], subgraphCount: 0, subgraphNodeCount: 0,
  };
  const closeAll = async () => {
    await mainFa.close();
    for (const fa of ctx.externalFiles.values()) await fa.close();
  };
  try {
    if (mainFa.size === 0) throw new CheckpointError(abs, 'file is empty', { offset: 0 });
    const inMemoryLimit = opts.inMemoryLimit ?? DEFAULT_IN_MEMORY_LIMIT;
    const whole = mainFa.size <= inMemoryLimit ? await mainFa.read(0, mainFa.size, 'ONNX model') : undefined;
    const src = new WireSource(mainFa, whole, Math.max(64, opts.windowBytes ?? DEFAULT_WINDOW));
    const scan = await walkModel(new WireCursor(src, 0), ctx);
    if (!scan.graphFound) throw new CheckpointError(abs, 'ONNX ModelProto has no graph (field 7): not an ONNX model, or truncated', { offset: 0 });

    const mainGraph = scan.mainGraph ?? { path: '', consumers: new Map<string, string>() };
    // Main graph first; inside a graph, initializers before constants; otherwise file order. A
    // subgraph tensor is prefixed with its subgraph path only when its own name is taken.
    const originOrder = { initializer: 0, sparse: 0, constant: 1 } as const;
    const ordered = ctx.pending.slice().sort((a, b) => a.depth - b.depth || originOrder[a.origin] - originOrder[b.origin] || a.seq - b.seq);
    const used = new Set<string>();
    const tensors: OnnxTensor[] = [];
    for (const p of ordered) {
      let name = p.localName;
      if (used.has(name) && p.graphPath) name = `${p.graphPath}/${p.localName}`;
      for (let k = 2; used.has(name); k++) name = `${p.graphPath ? `${p.graphPath}/` : ''}${p.localName}#${k}`;
      used.add(name);
      tensors.push(new OnnxTensor(name, p.dtype, p.shape, p.params, p.file, p.byteOffset, p.byteLength, groupOfOnnx(p, mainGraph), p.source));
    }

    const defaultOpset = scan.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
    const formatDetail = `ONNX ${defaultOpset ? `opset ${defaultOpset.version} ` : ''}(ir ${scan.irVersion ?? '?'})`;
    const externalFiles = ctx.externalOrder;
    const metadata: Record<string, unknown> = {
      irVersion: scan.irVersion,
      opsetImports: scan.opsetImports,
      producerName: scan.producerName,
      producerVersion: scan.producerVersion,
      domain: scan.domain,
      modelVersion: scan.modelVersion,
      docString: scan.docString,
      graphName: scan.graphName,
      metadataProps: scan.metadataProps,
      inputs: scan.inputs,
      outputs: scan.outputs,
      nodeCount: scan.nodeCount,
      opTypes: scan.opTypes,
      initializerCount: scan.initializerCount,
      constantCount: scan.constantCount,
      subgraphCount: ctx.subgraphCount,
      subgraphNodeCount: ctx.subgraphNodeCount,
      externalDataFiles: externalFiles.map((f) => nodePath.relative(ctx.dir, f)),
      undecodable: ctx.undecodable,
      ...(scan.trainingInfo ? { trainingInfo: 'present (its tensors are not listed)' } : {}),
      ...(scan.functionCount ? { functionCount: scan.functionCount } : {}),
    };
    for (const k of Object.keys(metadata)) if (metadata[k] === undefined) delete metadata[k];
    const files = [abs, ...externalFiles];
    const sizeOnDisk = mainFa.size + externalFiles.reduce((s, f) => s + ctx.externalFiles.get(f)!.size, 0);
    return new BaseCheckpoint('onnx', abs, files, sizeOnDisk, tensors, metadata, formatDetail, closeAll);
  } catch (e) {
    await closeAll();
    throw e;
  }
}
