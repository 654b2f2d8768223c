/**
 * GraphBuilder: ONNX graphs written in TypeScript, with weights referenced in place.
 *
 * Weights are initializers with EXTERNAL data pointing into the checkpoint's .safetensors files
 * (offset/length from the safetensors header), so onnxruntime memory-maps them: no copy and no .onnx file.
 * Small constants (shapes, axes, scalars) are inlined.
 */
import * as path from "path";
import type { DType, TensorInfo, WeightSource } from "../io/types";
import { TensorShapeError } from "../io/errors";
import { AttrType, encodeModel, OnnxType, type AttributeInit, type GraphInit, type NodeInit, type TensorProtoInit, type ValueInfoInit } from "./proto";

/** A tensor in the graph, by name. */
export type Value = string;

export type ElemType = "float32" | "float16" | "int64" | "int32" | "bool" | "uint8" | "int8";

const ELEM_TYPES: Record<ElemType, OnnxType> = {
  float32: OnnxType.FLOAT, float16: OnnxType.FLOAT16, int64: OnnxType.INT64, int32: OnnxType.INT32,
  bool: OnnxType.BOOL, uint8: OnnxType.UINT8, int8: OnnxType.INT8,
};

const DTYPE_TO_ONNX: Partial<Record<DType, OnnxType>> = {
  F32: OnnxType.FLOAT, F16: OnnxType.FLOAT16, BF16: OnnxType.BFLOAT16, F64: OnnxType.DOUBLE,
  I64: OnnxType.INT64, I32: OnnxType.INT32, I16: OnnxType.INT16, I8: OnnxType.INT8,
  U8: OnnxType.UINT8, U16: OnnxType.UINT16, U32: OnnxType.UINT32, U64: OnnxType.UINT64, BOOL: OnnxType.BOOL,
};

/** Marks a number that must be written as a FLOAT attribute even when it is integral (e.g. `alpha: float(1)`). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const float = (v: number): FloatAttr => new FloatAttr(v);

/** A subgraph as a node attribute (Loop's `body`), from `GraphBuilder.subgraph(...).buildSubgraph()`. */
export class GraphAttr {
  /** @internal */
  readonly graph: GraphInit;

  /** @internal */
  constructor(graph: GraphInit) {
    this.graph = graph;
  }
}

export type AttrValue = number | FloatAttr | string | number[] | FloatAttr[] | string[] | GraphAttr;

export interface OpOptions {
  domain?: string;
  /** Number of outputs (default 1). */
  outputs?: number;
  /** Readable node/output name prefix; made unique. */
  name?: string;
}

export interface BuiltModel {
  /** Serialized ModelProto. */
  bytes: Uint8Array;
  /** Folder that external-data `location`s are relative to; undefined when the graph has no external weights. */
  externalDataFolder?: string;
  /** True when some weight is stored in 16-bit and cast at run time (constant folding would copy it to fp32). */
  hasCastWeights: boolean;
  inputNames: string[];
  outputNames: string[];
  /** Total bytes of external weights referenced, by stored dtype. */
  weightBytes: Partial<Record<DType, number>>;
  /** Real paths of the files the weights are mapped from. */
  weightFiles: string[];
  /** For each of those files, the end of its last tensor used here (the size it must have). */
  weightFileEnds: Record<string, number>;
  /** The checkpoint tensors the graph maps (for the load-time scan of their values). */
  weightTensors: TensorInfo[];
}

interface ExternalRef {
  info: TensorInfo;
  init: TensorProtoInit;
}

/** What a graph and its subgraphs share: value names are unique across all of them, initializers live in the outermost. */
interface SharedState {
  readonly inlined: TensorProtoInit[];
  readonly external: Map<string, ExternalRef>;
  readonly usedNames: Set<string>;
  readonly constCache: Map<string, Value>;
  hasCastWeights: boolean;
}

export class GraphBuilder {
  private readonly nodes: NodeInit[] = [];
  private readonly weightValues = new Map<string, Value>();
  private readonly inputs: ValueInfoInit[] = [];
  private readonly outputs: ValueInfoInit[] = [];
  private readonly shared: SharedState;
  /** Names of the Cast nodes that turn 16-bit weights into fp32 at run time. */
  private readonly weightCasts = new Set<string>();

  constructor(readonly name: string, readonly weights?: WeightSource, private readonly parent?: GraphBuilder) {
    this.shared = parent?.shared ?? { inlined: [], external: new Map(), usedNames: new Set(), constCache: new Map(), hasCastWeights: false };
  }

  /**
   * A graph nested in this one (the body of a Loop). Its nodes may read any value of the enclosing graphs by
   * name; the weights and constants it asks for become initializers of the outermost graph, while the fp32 casts
   * of 16-bit weights stay inside it (so each runs, and is freed, per iteration as in a flat graph).
   */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this.weights, this);
  }

  /** Declares a graph input. Dimensions are numbers or symbolic names. */
  input(name: string, type: ElemType, dims: readonly (number | string)[]): Value {
    this.claim(name);
    this.inputs.push(valueInfo(name, ELEM_TYPES[type], dims));
    return name;
  }

  /** Declares a graph output (renamed through Identity when the value has another name). */
  output(value: Value, name: string, type: ElemType, dims: readonly (number | string)[]): void {
    const out = value === name ? value : this.renameTo(value, name);
    this.outputs.push(valueInfo(out, ELEM_TYPES[type], dims));
  }

  /** Adds a node with one output. */
  op(opType: string, inputs: readonly (Value | "")[], attrs: Record<string, AttrValue> = {}, opts: OpOptions = {}): Value {
    return this.opN(opType, inputs, attrs, { ...opts, outputs: 1 })[0];
  }

  /** Adds a node with `opts.outputs` outputs. */
  opN(opType: string, inputs: readonly (Value | "")[], attrs: Record<string, AttrValue> = {}, opts: OpOptions = {}): Value[] {
    const base = this.unique(opts.name ?? opType);
    const n = opts.outputs ?? 1;
    const outputs = Array.from({ length: n }, (_, i) => (n === 1 ? base : `${base}:${i}`));
    this.shared.usedNames.add(base);
    outputs.forEach((o) => this.shared.usedNames.add(o));
    this.nodes.push({
      name: base,
      op_type: opType,
      domain: opts.domain,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** A 1-D int64 constant (shapes, axes, indices). */
  constI64(values: readonly number[]): Value {
    const raw = new Uint8Array(new BigInt64Array(values.map((v) => BigInt(v))).buffer);
    return this.inline(`i64[${values.join(",")}]`, [values.length], OnnxType.INT64, raw);
  }

  /** A float32 constant: a scalar (dims []) when given a number. */
  constF32(values: number | Float32Array, dims?: readonly number[]): Value {
    const data = typeof values === "number" ? Float32Array.of(values) : values;
    const shape = dims ?? (typeof values === "number" ? [] : [data.length]);
    const key = data.length <= 16 ? `f32[${Array.from(data).join(",")}]/${shape.join("x")}` : undefined;
    return this.inline(key, shape, OnnxType.FLOAT, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /**
   * A weight from the checkpoint, as float32. Stored 16-bit weights are cast at run time.
   * `expectShape` is checked against the file so a wrong checkpoint fails at build time, naming the tensor.
   */
  weight(name: string, expectShape?: readonly number[]): Value {
    const cached = this.weightValues.get(name);
    if (cached) return cached;
    const raw = this.rawWeight(name, expectShape);
    const info = this.shared.external.get(raw)!.info;
    let value = raw;
    if (info.dtype !== "F32") {
      if (info.dtype !== "F16" && info.dtype !== "BF16") {
        throw new TensorShapeError(info.file, name, "a floating-point dtype (F32, F16 or BF16)", info.dtype);
      }
      this.shared.hasCastWeights = true;
      value = this.op("Cast", [raw], { to: OnnxType.FLOAT }, { name: `${name}/cast` });
      this.weightCasts.add(value);
    }
    this.weightValues.set(name, value);
    return value;
  }

  /** A weight exactly as stored (no cast). Used for quantized/integer tensors. */
  rawWeight(name: string, expectShape?: readonly number[]): Value {
    if (this.shared.external.has(name)) return name;
    if (!this.weights) throw new Error(`GraphBuilder ${this.name}: no WeightSource to read weight "${name}" from`);
    const info = this.weights.get(name);
    if (expectShape && !sameShape(info.shape, expectShape)) {
      throw new TensorShapeError(info.file, name, expectShape, info.shape);
    }
    const dataType = DTYPE_TO_ONNX[info.dtype];
    if (dataType === undefined) throw new TensorShapeError(info.file, name, "a dtype ONNX can hold", info.dtype);
    this.claim(name);
    this.shared.external.set(name, {
      info,
      init: { name, dims: [...info.shape], data_type: dataType, data_location: 1, external_data: [] },
    });
    return name;
  }

  /** The shape of a checkpoint tensor (for deriving sizes from the weights). */
  weightShape(name: string): readonly number[] {
    if (!this.weights) throw new Error(`GraphBuilder ${this.name}: no WeightSource`);
    return this.weights.get(name).shape;
  }

  build(opsets: Record<string, number> = { "": 21, "com.microsoft": 1 }): BuiltModel {
    if (this.parent) throw new Error(`GraphBuilder ${this.name}: a subgraph is built with buildSubgraph() and used as a node attribute`);
    // The casts of 16-bit weights go first. onnxruntime orders execution by a depth-first walk from the outputs
    // that visits a node's higher-indexed inputs first; a cast created just before its MatMul has a higher index
    // than the previous layer, so every layer's cast ran before the first MatMul and all the fp32 copies were
    // alive at once (16 layers: peak +256 MiB for 16 MiB copies). Placed first, each cast runs right before the
    // MatMul that reads it and is freed after it. Casts read only initializers: the order stays topological.
    const { folder, initializers } = this.externalInitializers();
    const weightBytes: Partial<Record<DType, number>> = {};
    for (const { info } of this.shared.external.values()) weightBytes[info.dtype] = (weightBytes[info.dtype] ?? 0) + info.byteLength;
    const bytes = encodeModel({
      graphName: this.name,
      nodes: this.orderedNodes(),
      initializers: [...this.shared.inlined, ...initializers],
      inputs: this.inputs,
      outputs: this.outputs,
      opsets: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
    });
    return {
      bytes,
      externalDataFolder: folder,
      hasCastWeights: this.shared.hasCastWeights,
      inputNames: this.inputs.map((i) => i.name),
      outputNames: this.outputs.map((o) => o.name),
      weightBytes,
      weightFiles: [...new Set([...this.shared.external.values()].map((r) => r.info.file))],
      weightFileEnds: this.weightFileEnds(),
      weightTensors: [...this.shared.external.values()].map((r) => r.info),
    };
  }

  /** This subgraph as a GraphProto for a node attribute (its initializers are in the outermost graph). */
  buildSubgraph(): GraphAttr {
    if (!this.parent) throw new Error(`GraphBuilder ${this.name}: not a subgraph; use build()`);
    return new GraphAttr({ name: this.name, node: this.orderedNodes(), initializer: [], input: this.inputs, output: this.outputs });
  }

  /** The weight casts first (see build()); the order stays topological since casts read only initializers. */
  private orderedNodes(): NodeInit[] {
    return [...this.nodes.filter((n) => this.weightCasts.has(n.name)), ...this.nodes.filter((n) => !this.weightCasts.has(n.name))];
  }

  private weightFileEnds(): Record<string, number> {
    const ends: Record<string, number> = {};
    for (const { info } of this.shared.external.values()) ends[info.file] = Math.max(ends[info.file] ?? 0, info.offset + info.byteLength);
    return ends;
  }

  /**
   * onnxruntime resolves external locations against one folder and refuses `..` and absolute paths,
   * so every location is made relative to the deepest folder holding all the (symlink-resolved) files.
   */
  private externalInitializers(): { folder?: string; initializers: TensorProtoInit[] } {
    const refs = [...this.shared.external.values()];
    if (refs.length === 0) return { initializers: [] };
    const folder = commonFolder(refs.map((r) => r.info.file));
    const initializers = refs.map(({ info, init }) => ({
      ...init,
      external_data: [
        { key: "location", value: path.relative(folder, info.file) },
        { key: "offset", value: String(info.offset) },
        { key: "length", value: String(info.byteLength) },
      ],
    }));
    return { folder, initializers };
  }

  private inline(cacheKey: string | undefined, dims: readonly number[], dataType: OnnxType, raw: Uint8Array): Value {
    const hit = cacheKey && this.shared.constCache.get(cacheKey);
    if (hit) return hit;
    const name = this.unique("const");
    this.shared.usedNames.add(name);
    this.shared.inlined.push({ name, dims: [...dims], data_type: dataType, raw_data: raw.slice() });
    if (cacheKey) this.shared.constCache.set(cacheKey, name);
    return name;
  }

  private renameTo(value: Value, name: string): Value {
    this.claim(name);
    this.nodes.push({ name: `${name}/identity`, op_type: "Identity", input: [value], output: [name], attribute: [] });
    return name;
  }

  private claim(name: string): void {
    if (this.shared.usedNames.has(name)) throw new Error(`GraphBuilder ${this.name}: value name "${name}" used twice`);
    this.shared.usedNames.add(name);
  }

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.shared.usedNames.has(name); i++) name = `${base}_${i}`;
    return name;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function commonFolder(files: string[]): string {
  let folder = path.dirname(files[0]);
  for (const f of files) {
    while (path.relative(folder, f).startsWith("..")) folder = path.dirname(folder);
  }
  return folder;
}

function valueInfo(name: string, elemType: OnnxType, dims: readonly (number | string)[]): ValueInfoInit {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): AttributeInit {
  if (v instanceof GraphAttr) return { name, type: AttrType.GRAPH, g: v.graph };
  if (v instanceof FloatAttr) return { name, type: AttrType.FLOAT, f: v.value };
  if (typeof v === "number") return Number.isInteger(v) ? { name, type: AttrType.INT, i: v } : { name, type: AttrType.FLOAT, f: v };
  if (typeof v === "string") return { name, type: AttrType.STRING, s: Buffer.from(v, "utf8") };
  const list = v as readonly (number | FloatAttr | string)[];
  if (list.length > 0 && typeof list[0] === "string") {
    return { name, type: AttrType.STRINGS, strings: (list as string[]).map((s) => Buffer.from(s, "utf8")) };
  }
  const isFloat = list.some((x) => x instanceof FloatAttr || (typeof x === "number" && !Number.isInteger(x)));
  const nums = list.map((x) => (x instanceof FloatAttr ? x.value : (x as number)));
  return isFloat ? { name, type: AttrType.FLOATS, floats: nums } : { name, type: AttrType.INTS, ints: nums };
}
