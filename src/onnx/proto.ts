/**
 * ONNX ModelProto encoding with protobufjs.
 *
 * Only the subset of onnx.proto this project writes is declared (field numbers as in onnx/onnx.proto,
 * proto2 semantics so that explicitly set zero values are still written).
 */
import * as protobuf from "protobufjs";

const ONNX_SUBSET = `
syntax = "proto2";
package onnx;
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message TensorShapeProto {
  message Dimension { optional int64 dim_value = 1; optional string dim_param = 2; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  optional Tensor tensor_type = 1;
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
}
message AttributeProto {
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  optional int32 type = 20;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
`;

const root = protobuf.parse(ONNX_SUBSET, { keepCase: true }).root;
const ModelProto = root.lookupType("onnx.ModelProto");

/** onnx TensorProto.DataType values. */
export const enum OnnxType {
  FLOAT = 1, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6, INT64 = 7,
  BOOL = 9, FLOAT16 = 10, DOUBLE = 11, UINT32 = 12, UINT64 = 13, BFLOAT16 = 16,
}

/** onnx AttributeProto.AttributeType values. */
export const enum AttrType { FLOAT = 1, INT = 2, STRING = 3, TENSOR = 4, GRAPH = 5, FLOATS = 6, INTS = 7, STRINGS = 8 }

export interface TensorProtoInit {
  name: string;
  dims: readonly number[];
  data_type: number;
  raw_data?: Uint8Array;
  external_data?: { key: string; value: string }[];
  data_location?: number;
}

export interface AttributeInit {
  name: string;
  type: AttrType;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProtoInit;
  /** A subgraph (the body of Loop, the branches of If). */
  g?: GraphInit;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface NodeInit {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain?: string;
  attribute: AttributeInit[];
}

export interface ValueInfoInit {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}

/** A GraphProto nested in a node attribute: its values may refer to the enclosing graphs' values by name. */
export interface GraphInit {
  name: string;
  node: NodeInit[];
  initializer: TensorProtoInit[];
  input: ValueInfoInit[];
  output: ValueInfoInit[];
}

export interface ModelInit {
  graphName: string;
  nodes: NodeInit[];
  initializers: TensorProtoInit[];
  inputs: ValueInfoInit[];
  outputs: ValueInfoInit[];
  opsets: { domain: string; version: number }[];
}

/** IR 10 is accepted by onnxruntime-node 1.30 (max 13) and covers opset 21. */
const IR_VERSION = 10;

export function encodeModel(m: ModelInit): Uint8Array {
  const message = ModelProto.fromObject({
    ir_version: IR_VERSION,
    producer_name: "pixart-ts",
    producer_version: "0.1.0",
    opset_import: m.opsets,
    graph: {
      name: m.graphName,
      node: m.nodes,
      initializer: m.initializers,
      input: m.inputs,
      output: m.outputs,
    },
  });
  return ModelProto.encode(message).finish();
}
