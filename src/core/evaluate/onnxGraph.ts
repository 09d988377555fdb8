/**
 * A small builder for ONNX graphs held in memory: named initializers, nodes with typed attributes,
 * fresh value names, then `encode()` to a ModelProto through the shared schema in
 * core/checkpoint/onnxProto.ts. The transformer graphs (graphGpt2.ts, graphLlama.ts) are written
 * with it; onnxruntime-node loads the bytes with `InferenceSession.create(buffer)`.
 *
 * Opset 17 is used: it has LayerNormalization, and ReduceMean still takes `axes` as an attribute.
 */
import {
  encodeModel, OnnxAttributeType, OnnxDataType,
  type IAttributeProto, type INodeProto, type ITensorProto, type IValueInfoProto,
} from '../checkpoint/onnxProto';

export const GRAPH_OPSET = 17;
/** IR version 8 is the one that goes with opset 17 (onnx/docs/Versioning.md). */
export const GRAPH_IR_VERSION = 8;

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** float32 values as TensorProto raw_data (little-endian by the ONNX spec). */
function float32Raw(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const raw = new Uint8Array(data.byteLength);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  return raw;
}

function int64Raw(data: readonly number[]): Uint8Array {
  const raw = new Uint8Array(data.length * 8);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) dv.setBigInt64(i * 8, BigInt(data[i]), true);
  return raw;
}

export class GraphBuilder {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;
  private readonly int64Cache = new Map<string, string>();

  /** A value name not used before, readable in a graph viewer ("/h.3/attn/q_7"). */
  fresh(hint: string): string {
    let name = `/${hint}_${this.counter++}`;
    while (this.names.has(name)) name = `/${hint}_${this.counter++}`;
    this.names.add(name);
    return name;
  }

  /** Adds a float32 initializer under `name` (a checkpoint tensor's own name where there is one). */
  floatInit(name: string, dims: number[], data: Float32Array): string {
    if (this.names.has(name)) throw new Error(`graph: initializer ${name} defined twice`);
    this.names.add(name);
    this.initializers.push({ name, dims, data_type: OnnxDataType.FLOAT, raw_data: float32Raw(data) });
    return name;
  }

  /** A constant float scalar (shape []) as an initializer. */
  scalar(value: number, hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dims: [], data_type: OnnxDataType.FLOAT, raw_data: float32Raw(new Float32Array([value])) });
    return name;
  }

  /** A constant int64 tensor (1-D unless `dims` says otherwise), shared between uses of equal value. */
  int64(values: readonly number[], dims: number[] = [values.length]): string {
    const key = `${dims.join('x')}:${values.join(',')}`;
    const cached = this.int64Cache.get(key);
    if (cached) return cached;
    const name = this.fresh('i64');
    this.initializers.push({ name, dims, data_type: OnnxDataType.INT64, raw_data: int64Raw(values) });
    this.int64Cache.set(key, name);
    return name;
  }

  /** Appends one node and returns its outputs (fresh names from `hint` unless given). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = opType, nOutputs = 1): string[] {
    const outputs = Array.from({ length: nOutputs }, (_, i) => this.fresh(nOutputs > 1 ? `${hint}_out${i}` : hint));
    this.nodes.push({ op_type: opType, input: inputs, output: outputs, name: `${outputs[0]}_node`, attribute: encodeAttrs(attrs) });
    return outputs;
  }

  /** One-output shorthand of `op`. */
  op1(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = opType): string {
    return this.op(opType, inputs, attrs, hint, 1)[0];
  }

  /** Appends one node whose single output gets the given name (a graph output such as "logits"). */
  opTo(output: string, opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    if (this.names.has(output)) throw new Error(`graph: value ${output} defined twice`);
    this.names.add(output);
    this.nodes.push({ op_type: opType, input: inputs, output: [output], name: `${output}_node`, attribute: encodeAttrs(attrs) });
    return output;
  }

  /** Serialises the graph as an ONNX ModelProto. */
  encode(opts: { graphName: string; inputs: IValueInfoProto[]; outputs: IValueInfoProto[]; docString?: string; metadata?: Record<string, string> }): Uint8Array {
    return encodeModel({
      ir_version: GRAPH_IR_VERSION,
      opset_import: [{ domain: '', version: GRAPH_OPSET }],
      producer_name: 'tensor-scalpel',
      producer_version: '0',
      doc_string: opts.docString,
      metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: opts.inputs,
        output: opts.outputs,
      },
    });
  }
}

function encodeAttrs(attrs: Record<string, AttrValue>): IAttributeProto[] {
  return Object.entries(attrs).map(([name, v]): IAttributeProto => {
    if (typeof v === 'number') return { name, type: OnnxAttributeType.INT, i: v };
    if (typeof v === 'string') return { name, type: OnnxAttributeType.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name, type: OnnxAttributeType.INTS, ints: v };
    if ('float' in v) return { name, type: OnnxAttributeType.FLOAT, f: v.float };
    return { name, type: OnnxAttributeType.FLOATS, floats: v.floats };
  });
}

/** A tensor value info: element type and dims (a string dim is symbolic, e.g. "seq"). */
export function valueInfo(name: string, elemType: number, dims: Array<number | string>): IValueInfoProto {
  return {
    name,
    type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  };
}
