/**
 * The subset of the ONNX protobuf schema (onnx/onnx.proto, IR version 10) that Tensor Scalpel reads
 * and writes, for protobufjs. Field numbers, types and packing are those of the spec; field names
 * keep the spec's snake_case (`raw_data`, `data_type`) so code reads like the spec.
 *
 * The reader (onnx.ts) walks the wire format itself so that weights are never copied; it uses this
 * schema to decode the small messages (value infos, opset ids, key/value pairs). Writers use
 * `encodeModel()` to produce a model: every message here round-trips through protobufjs.
 *
 * The schema is proto2, as onnx.proto is: the typed tensor fields are `[packed = true]`, `dims` and
 * the attribute lists are not. Parsers accept both encodings of a repeated scalar either way.
 */
import protobuf from 'protobufjs';

const ONNX_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11;
    TYPE_PROTO = 13; FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
    SPARSE_TENSORS = 12; TYPE_PROTOS = 14;
  }
  optional string name = 1;
  optional string ref_attr_name = 21;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  optional SparseTensorProto sparse_tensor = 22;
  optional TypeProto tp = 14;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  repeated SparseTensorProto sparse_tensors = 23;
  repeated TypeProto type_protos = 15;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
  repeated StringStringEntryProto metadata_props = 4;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  optional string overload = 8;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  repeated StringStringEntryProto metadata_props = 9;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated SparseTensorProto sparse_initializer = 15;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
  repeated StringStringEntryProto metadata_props = 16;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7;
    STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11; UINT32 = 12; UINT64 = 13; COMPLEX64 = 14;
    COMPLEX128 = 15; BFLOAT16 = 16; FLOAT8E4M3FN = 17; FLOAT8E4M3FNUZ = 18; FLOAT8E5M2 = 19;
    FLOAT8E5M2FNUZ = 20; UINT4 = 21; INT4 = 22; FLOAT4E2M1 = 23; FLOAT8E8M0 = 24;
  }
  message Segment {
    optional int64 begin = 1;
    optional int64 end = 2;
  }
  enum DataLocation { DEFAULT = 0; EXTERNAL = 1; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional Segment segment = 3;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional DataLocation data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
  repeated StringStringEntryProto metadata_props = 16;
}

message SparseTensorProto {
  optional TensorProto values = 1;
  optional TensorProto indices = 2;
  repeated int64 dims = 3;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  message Sequence {
    optional TypeProto elem_type = 1;
  }
  message Map {
    optional int32 key_type = 1;
    optional TypeProto value_type = 2;
  }
  message Optional {
    optional TypeProto elem_type = 1;
  }
  message SparseTensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
    Sequence sequence_type = 4;
    Map map_type = 5;
    Optional optional_type = 9;
    SparseTensor sparse_tensor_type = 8;
  }
  optional string denotation = 6;
}
`;

/** The parsed schema; `keepCase` keeps the spec's field names. */
export const onnxRoot: protobuf.Root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;

function lookup(name: string): protobuf.Type {
  return onnxRoot.lookupType(`onnx.${name}`);
}

export const ModelProtoType = lookup('ModelProto');
export const GraphProtoType = lookup('GraphProto');
export const NodeProtoType = lookup('NodeProto');
export const AttributeProtoType = lookup('AttributeProto');
export const TensorProtoType = lookup('TensorProto');
export const SparseTensorProtoType = lookup('SparseTensorProto');
export const ValueInfoProtoType = lookup('ValueInfoProto');
export const TypeProtoType = lookup('TypeProto');
export const TensorShapeProtoType = lookup('TensorShapeProto');
export const StringStringEntryProtoType = lookup('StringStringEntryProto');
export const OperatorSetIdProtoType = lookup('OperatorSetIdProto');

/** TensorProto.DataType ids from onnx.proto. */
export const OnnxDataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8,
  BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15,
  BFLOAT16: 16, FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18, FLOAT8E5M2: 19, FLOAT8E5M2FNUZ: 20,
  UINT4: 21, INT4: 22, FLOAT4E2M1: 23, FLOAT8E8M0: 24,
} as const;

/** AttributeProto.AttributeType ids from onnx.proto. */
export const OnnxAttributeType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8,
  TENSORS: 9, GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
} as const;

/** TensorProto.DataLocation. */
export const OnnxDataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

/**
 * How each ONNX element type maps onto our dtype strings (types.ts), and which typed field of
 * TensorProto carries it when raw_data is absent (onnx.proto's comments on each field):
 * float_data: FLOAT, COMPLEX64; int32_data: INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16,
 * BFLOAT16, FLOAT8*, (U)INT4 — 16-bit floats as their bit pattern; int64_data: INT64;
 * double_data: DOUBLE, COMPLEX128; uint64_data: UINT32, UINT64; string_data: STRING.
 * `bytes` is the raw_data size of one element (0 = not a whole number of bytes, or variable).
 * `decodable` false: listed in the index, but read() refuses with a clear message.
 */
export interface OnnxElementType {
  id: number;
  onnxName: string;
  dtype: string;
  bytes: number;
  typedField: 'float_data' | 'int32_data' | 'int64_data' | 'double_data' | 'uint64_data' | 'string_data';
  decodable: boolean;
}

const ELEMENT_TYPES: OnnxElementType[] = [
  { id: 1, onnxName: 'FLOAT', dtype: 'F32', bytes: 4, typedField: 'float_data', decodable: true },
  { id: 2, onnxName: 'UINT8', dtype: 'U8', bytes: 1, typedField: 'int32_data', decodable: true },
  { id: 3, onnxName: 'INT8', dtype: 'I8', bytes: 1, typedField: 'int32_data', decodable: true },
  { id: 4, onnxName: 'UINT16', dtype: 'U16', bytes: 2, typedField: 'int32_data', decodable: true },
  { id: 5, onnxName: 'INT16', dtype: 'I16', bytes: 2, typedField: 'int32_data', decodable: true },
  { id: 6, onnxName: 'INT32', dtype: 'I32', bytes: 4, typedField: 'int32_data', decodable: true },
  { id: 7, onnxName: 'INT64', dtype: 'I64', bytes: 8, typedField: 'int64_data', decodable: true },
  { id: 8, onnxName: 'STRING', dtype: 'STRING', bytes: 0, typedField: 'string_data', decodable: false },
  { id: 9, onnxName: 'BOOL', dtype: 'BOOL', bytes: 1, typedField: 'int32_data', decodable: true },
  { id: 10, onnxName: 'FLOAT16', dtype: 'F16', bytes: 2, typedField: 'int32_data', decodable: true },
  { id: 11, onnxName: 'DOUBLE', dtype: 'F64', bytes: 8, typedField: 'double_data', decodable: true },
  { id: 12, onnxName: 'UINT32', dtype: 'U32', bytes: 4, typedField: 'uint64_data', decodable: true },
  { id: 13, onnxName: 'UINT64', dtype: 'U64', bytes: 8, typedField: 'uint64_data', decodable: true },
  { id: 14, onnxName: 'COMPLEX64', dtype: 'C64', bytes: 8, typedField: 'float_data', decodable: false },
  { id: 15, onnxName: 'COMPLEX128', dtype: 'C128', bytes: 16, typedField: 'double_data', decodable: false },
  { id: 16, onnxName: 'BFLOAT16', dtype: 'BF16', bytes: 2, typedField: 'int32_data', decodable: true },
  { id: 17, onnxName: 'FLOAT8E4M3FN', dtype: 'F8_E4M3', bytes: 1, typedField: 'int32_data', decodable: true },
  { id: 18, onnxName: 'FLOAT8E4M3FNUZ', dtype: 'F8_E4M3FNUZ', bytes: 1, typedField: 'int32_data', decodable: false },
  { id: 19, onnxName: 'FLOAT8E5M2', dtype: 'F8_E5M2', bytes: 1, typedField: 'int32_data', decodable: true },
  { id: 20, onnxName: 'FLOAT8E5M2FNUZ', dtype: 'F8_E5M2FNUZ', bytes: 1, typedField: 'int32_data', decodable: false },
  { id: 21, onnxName: 'UINT4', dtype: 'U4', bytes: 0, typedField: 'int32_data', decodable: false },
  { id: 22, onnxName: 'INT4', dtype: 'I4', bytes: 0, typedField: 'int32_data', decodable: false },
  { id: 23, onnxName: 'FLOAT4E2M1', dtype: 'F4_E2M1', bytes: 0, typedField: 'int32_data', decodable: false },
  { id: 24, onnxName: 'FLOAT8E8M0', dtype: 'F8_E8M0', bytes: 1, typedField: 'int32_data', decodable: false },
];

const BY_ID = new Map(ELEMENT_TYPES.map((t) => [t.id, t]));
const BY_DTYPE = new Map(ELEMENT_TYPES.map((t) => [t.dtype, t]));

/** The element type for a TensorProto.data_type id, or undefined when the spec defines no such id. */
export function onnxElementType(id: number): OnnxElementType | undefined {
  return BY_ID.get(id);
}

/** Our dtype string (F32, BF16, ...) -> ONNX data_type id, for writers. */
export function onnxDataTypeOf(dtype: string): number | undefined {
  return BY_DTYPE.get(dtype.toUpperCase())?.id;
}

// ---------------------------------------------------------------------------------------------
// Plain-object shapes of the messages, for writers (what protobufjs' `fromObject` accepts).
// 64-bit integers may be given as numbers; decoded objects (decodeModel) carry numbers too.

export interface IStringStringEntryProto { key?: string; value?: string }
export interface IOperatorSetIdProto { domain?: string; version?: number }
export interface ITensorShapeDimension { dim_value?: number; dim_param?: string; denotation?: string }
export interface ITensorShapeProto { dim?: ITensorShapeDimension[] }
export interface ITypeProto {
  tensor_type?: { elem_type?: number; shape?: ITensorShapeProto };
  sequence_type?: { elem_type?: ITypeProto };
  map_type?: { key_type?: number; value_type?: ITypeProto };
  optional_type?: { elem_type?: ITypeProto };
  sparse_tensor_type?: { elem_type?: number; shape?: ITensorShapeProto };
  denotation?: string;
}
export interface IValueInfoProto { name?: string; type?: ITypeProto; doc_string?: string }
export interface ITensorProto {
  dims?: number[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: number[];
  name?: string;
  doc_string?: string;
  raw_data?: Uint8Array;
  external_data?: IStringStringEntryProto[];
  data_location?: number;
  double_data?: number[];
  uint64_data?: number[];
}
export interface ISparseTensorProto { values?: ITensorProto; indices?: ITensorProto; dims?: number[] }
export interface IAttributeProto {
  name?: string;
  ref_attr_name?: string;
  doc_string?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: ITensorProto;
  g?: IGraphProto;
  sparse_tensor?: ISparseTensorProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: ITensorProto[];
  graphs?: IGraphProto[];
}
export interface INodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: IAttributeProto[];
  doc_string?: string;
}
export interface IGraphProto {
  node?: INodeProto[];
  name?: string;
  initializer?: ITensorProto[];
  sparse_initializer?: ISparseTensorProto[];
  doc_string?: string;
  input?: IValueInfoProto[];
  output?: IValueInfoProto[];
  value_info?: IValueInfoProto[];
}
export interface IModelProto {
  ir_version?: number;
  opset_import?: IOperatorSetIdProto[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph?: IGraphProto;
  metadata_props?: IStringStringEntryProto[];
}

/** Options that turn protobufjs messages into plain objects with number (not Long) integers. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, arrays: false, defaults: false, oneofs: false };

/** Serialises a model. The whole model is built in memory: use external data for large weights. */
export function encodeModel(model: IModelProto): Uint8Array {
  return encodeMessage(ModelProtoType, model);
}

/** Decodes a whole model into plain objects (copies every weight: for small models and tests). */
export function decodeModel(bytes: Uint8Array): IModelProto {
  return decodeMessage(ModelProtoType, bytes) as IModelProto;
}

/** Serialises any message of this schema from a plain object. */
export function encodeMessage(type: protobuf.Type, value: object): Uint8Array {
  const msg = type.fromObject(value as Record<string, unknown>);
  return type.encode(msg).finish();
}

/** Decodes any message of this schema to a plain object (64-bit integers as numbers). */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

/** Builds a TensorProto with little-endian raw_data from a float32 array (the common writer case). */
export function float32Tensor(name: string, dims: number[], data: Float32Array): ITensorProto {
  const raw = new Uint8Array(data.byteLength);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  return { name, dims, data_type: OnnxDataType.FLOAT, raw_data: raw };
}

/**
 * A TensorProto whose data lives in an external file (data_location = EXTERNAL): `location` is
 * relative to the model's directory, `offset`/`length` a byte range into it (ONNX external data
 * spec: the values are decimal strings).
 */
export function externalDataTensor(name: string, dims: number[], dataType: number, location: string, offset: number, length: number): ITensorProto {
  return {
    name, dims, data_type: dataType, data_location: OnnxDataLocation.EXTERNAL,
    external_data: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
  };
}
