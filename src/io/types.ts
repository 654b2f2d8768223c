/**
 * The contract between checkpoint I/O and the graph builder: where each tensor's bytes live on disk.
 * Everything above `io/` sees weights only through `WeightSource`, never through file handles.
 */

/** safetensors dtype names, as written in the header. */
export type DType =
  | "F64" | "F32" | "F16" | "BF16"
  | "I64" | "I32" | "I16" | "I8"
  | "U64" | "U32" | "U16" | "U8"
  | "BOOL" | "F8_E4M3" | "F8_E5M2";

export interface TensorInfo {
  /** Tensor name as stored in the file (e.g. `transformer_blocks.0.attn1.to_q.weight`). */
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Real path (symlinks resolved) of the file holding the bytes. */
  readonly file: string;
  /** Absolute byte offset of the first element within `file`. */
  readonly offset: number;
  readonly byteLength: number;
}

/** A set of named tensors, possibly spread over several shard files. */
export interface WeightSource {
  /** The folder the weights were loaded from (as given, not resolved), for messages. */
  readonly dir: string;
  has(name: string): boolean;
  /** Throws a `MissingTensorError` naming the folder and the tensor when absent. */
  get(name: string): TensorInfo;
  names(): string[];
}
