/**
 * Writing .safetensors files, laid out as the reference implementation lays them out: header JSON padded
 * with spaces to a multiple of 8 bytes, tensors ordered by dtype (widest first, in the reference's order)
 * then by name, packed back to back. With that order every tensor starts at a multiple of its element
 * size and the files are byte-identical to `safetensors.torch.save_file` for the same tensors.
 *
 * Tensor data may be produced lazily (a function, possibly returning chunks), one tensor at a time, so
 * multi-GB files are written without holding them in memory. The file appears atomically (temp + rename).
 */
import * as os from "os";
import { promises as fsp } from "fs";
import { replaceFileAtomically, writeAll } from "./atomic-file";
import { CheckpointError, TensorShapeError } from "./errors";
import { METADATA_KEY, byteSize, isDType } from "./safetensors";
import type { DType } from "./types";

/** Tensor bytes as they are written: chunks, sync or async. */
export type Chunks = Iterable<ArrayBufferView> | AsyncIterable<ArrayBufferView>;
/** The bytes of one tensor (little-endian, row-major), given or produced on demand (whole or in chunks). */
export type TensorDataSource =
  | ArrayBufferView
  | (() => ArrayBufferView | Promise<ArrayBufferView> | Chunks);

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorDataSource;
}

export interface WriteOptions {
  /** Stored as `__metadata__` (string → string). */
  metadata?: Readonly<Record<string, string>>;
}

export interface HeaderLayoutEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Offsets relative to the data section, as written in the header. */
  readonly begin: number;
  readonly end: number;
}

export interface HeaderLayout {
  /** The 8-byte length prefix plus the padded JSON header: write it first. */
  readonly bytes: Uint8Array;
  /** Tensors in file order. */
  readonly entries: readonly HeaderLayoutEntry[];
  readonly dataStart: number;
  readonly fileSize: number;
}

/** Descending rank of each dtype in the reference writer's ordering (its dtype enum, reversed). */
const DTYPE_ORDER: readonly DType[] = [
  "U64", "I64", "F64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16", "F8_E4M3", "F8_E5M2", "I8", "U8", "BOOL",
];

function compareForLayout(a: { name: string; dtype: DType }, b: { name: string; dtype: DType }): number {
  const byType = DTYPE_ORDER.indexOf(a.dtype) - DTYPE_ORDER.indexOf(b.dtype);
  return byType !== 0 ? byType : Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)); // byte order, like Rust
}

/** Validates the specs and computes the header and the position of every tensor. */
export function layoutSafetensors(
  file: string,
  specs: readonly { name: string; dtype: DType; shape: readonly number[] }[],
  metadata?: Readonly<Record<string, string>>,
): HeaderLayout {
  const seen = new Set<string>();
  for (const s of specs) {
    const bad = (problem: string): never => {
      throw new CheckpointError(file, `cannot write: ${problem}`, { tensor: s.name });
    };
    if (s.name === METADATA_KEY) bad(`"${METADATA_KEY}" is reserved`);
    if (seen.has(s.name)) bad("duplicate tensor name");
    seen.add(s.name);
    if (!isDType(s.dtype)) bad(`unknown dtype ${JSON.stringify(s.dtype)}`);
    if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`invalid shape [${s.shape.join(", ")}]`);
    if (byteSize(s.shape, s.dtype) === undefined) bad("tensor too large");
  }
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header[METADATA_KEY] = { ...metadata };
  const entries: HeaderLayoutEntry[] = [];
  let pos = 0;
  for (const s of [...specs].sort(compareForLayout)) {
    const end = pos + byteSize(s.shape, s.dtype)!;
    entries.push({ name: s.name, dtype: s.dtype, shape: [...s.shape], begin: pos, end });
    header[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [pos, end] };
    pos = end;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = Buffer.alloc(8 + padded, 0x20); // spaces pad the JSON
  bytes.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(bytes, 8);
  return { bytes, entries, dataStart: 8 + padded, fileSize: 8 + padded + pos };
}

function asBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

async function* chunksOf(source: TensorDataSource): AsyncGenerator<Uint8Array> {
  const produced = typeof source === "function" ? await source() : source;
  if (ArrayBuffer.isView(produced)) {
    yield asBytes(produced);
    return;
  }
  for await (const chunk of produced) yield asBytes(chunk);
}

async function writeTensor(
  handle: fsp.FileHandle,
  file: string,
  entry: HeaderLayoutEntry,
  dataStart: number,
  source: TensorDataSource,
): Promise<void> {
  const size = entry.end - entry.begin;
  const expected = `${size} bytes (${entry.dtype} [${entry.shape.join(", ")}])`;
  let got = 0;
  for await (const chunk of chunksOf(source)) {
    if (got + chunk.byteLength > size) throw new TensorShapeError(file, entry.name, expected, `more than ${size} bytes of data`);
    await writeAll(handle, chunk, dataStart + entry.begin + got);
    got += chunk.byteLength;
  }
  if (got !== size) throw new TensorShapeError(file, entry.name, expected, `${got} bytes of data`);
}

export interface WriteResult {
  readonly file: string;
  readonly headerLength: number;
  readonly dataStart: number;
  readonly fileSize: number;
}

/**
 * Writes `tensors` to `file`. Data sources are consumed in file order, one at a time; each must yield
 * exactly the tensor's byte size. On any error the partial file is removed and `file` is left untouched.
 */
export async function writeSafetensors(
  file: string,
  tensors: Iterable<TensorToWrite>,
  options: WriteOptions = {},
): Promise<WriteResult> {
  if (os.endianness() !== "LE") throw new CheckpointError(file, "cannot write: safetensors is little-endian and this host is not");
  const byName = new Map<string, TensorToWrite>();
  const specs = [...tensors].map((t) => {
    byName.set(t.name, t);
    return t;
  });
  const layout = layoutSafetensors(file, specs, options.metadata);
  await replaceFileAtomically(file, async (handle) => {
    await writeAll(handle, layout.bytes, 0);
    for (const entry of layout.entries) {
      await writeTensor(handle, file, entry, layout.dataStart, byName.get(entry.name)!.data);
    }
  });
  return { file, headerLength: layout.dataStart - 8, dataStart: layout.dataStart, fileSize: layout.fileSize };
}
