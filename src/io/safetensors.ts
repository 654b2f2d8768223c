/**
 * Reading .safetensors files: an 8-byte little-endian header length, a UTF-8 JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then the data
 * section (offsets are relative to its start). Only the header is read when a file is opened, since
 * checkpoint files run to 10 GB; tensor bytes are read on request. The header is validated strictly so
 * that nothing above this layer can be handed an offset outside the file.
 */
import * as fs from "fs";
import { promises as fsp } from "fs";
import { CheckpointError, PathNotFoundError, SafetensorsFormatError, TensorShapeError } from "./errors";
import type { DType, TensorInfo } from "./types";

/** Bytes per element of each dtype. */
export const DTYPE_SIZES: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export function isDType(s: unknown): s is DType {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZES, s);
}

/** The safetensors reference implementation refuses headers above this size; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;
export const METADATA_KEY = "__metadata__";

export interface SafetensorsFile {
  /** The path as given (used in messages). */
  readonly path: string;
  /** `fs.realpathSync(path)`: where the bytes really are (HF cache files are symlinks to blobs). */
  readonly realPath: string;
  readonly fileSize: number;
  readonly headerLength: number;
  /** Absolute offset of the data section: 8 + headerLength. */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Name → tensor, offsets absolute within the file, in header order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
}

/** Opens a .safetensors file and validates its header; reads no tensor data. */
export async function openSafetensors(file: string): Promise<SafetensorsFile> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    if (code === "ENOENT") throw new PathNotFoundError(file, "a .safetensors file");
    throw new CheckpointError(file, `cannot open the file (${code})`, { cause: e });
  }
  try {
    const realPath = fs.realpathSync(file);
    const stat = await handle.stat();
    if (!stat.isFile()) throw new SafetensorsFormatError(file, "is not a regular file (a folder or a device?); expected a .safetensors file");
    const fileSize = stat.size;
    if (fileSize < 8) {
      throw new SafetensorsFormatError(file, `file is ${fileSize} bytes; expected at least 8 (the header length)`);
    }
    const lenBytes = await readExactly(handle, 0, 8, file);
    const headerLength = checkHeaderLength(Buffer.from(lenBytes.buffer).readBigUInt64LE(0), fileSize, file);
    const headerBytes = await readExactly(handle, 8, headerLength, file);
    const dataStart = 8 + headerLength;
    const { metadata, tensors } = parseSafetensorsHeader(headerBytes, {
      file,
      realPath,
      dataStart,
      dataSize: fileSize - dataStart,
    });
    return { path: file, realPath, fileSize, headerLength, dataStart, metadata, tensors };
  } finally {
    await handle.close();
  }
}

function checkHeaderLength(n: bigint, fileSize: number, file: string): number {
  if (n === 0n) throw new SafetensorsFormatError(file, "header length is 0; expected a JSON header");
  if (n > BigInt(fileSize - 8)) {
    throw new SafetensorsFormatError(
      file,
      `header length ${n} runs past the end of the file (${fileSize} bytes, so at most ${fileSize - 8}); truncated or not a safetensors file`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsFormatError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  return Number(n);
}

/** Reads `length` bytes at `position` into a fresh (so 8-byte aligned) buffer; a short read is an error. */
async function readExactly(handle: fsp.FileHandle, position: number, length: number, file: string): Promise<Uint8Array> {
  const out = new Uint8Array(new ArrayBuffer(length));
  const CHUNK = 1 << 30; // fs reads are limited to 2 GiB per call
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, Math.min(CHUNK, length - done), position + done);
    if (bytesRead === 0) {
      throw new SafetensorsFormatError(
        file,
        `file ended at byte ${position + done}, expected ${length} bytes from offset ${position} (truncated or changed since it was opened?)`,
      );
    }
    done += bytesRead;
  }
  return out;
}

export interface HeaderContext {
  /** File name for messages. */
  file: string;
  /** Stored into each TensorInfo's `file`. */
  realPath: string;
  /** Absolute offset of the data section. */
  dataStart: number;
  /** Bytes in the data section (file size − dataStart). */
  dataSize: number;
}

/** Validates a raw header and turns it into TensorInfos with absolute offsets. */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  ctx: HeaderContext,
): { metadata: Record<string, string> | null; tensors: Map<string, TensorInfo> } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch (e) {
    throw new SafetensorsFormatError(ctx.file, "header is not valid UTF-8", { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsFormatError(ctx.file, `header is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsFormatError(ctx.file, "header must be a JSON object of tensor entries");
  }
  // JSON.parse keeps the last of two equal keys without a word; the reference implementation refuses them.
  const duplicate = duplicateTopLevelKey(text);
  if (duplicate !== undefined) {
    throw new SafetensorsFormatError(ctx.file, "the header names this tensor more than once", { tensor: duplicate });
  }
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === METADATA_KEY) metadata = checkMetadata(entry, ctx.file);
    else tensors.set(name, checkEntry(name, entry, ctx));
  }
  checkNoOverlap(tensors, ctx);
  return { metadata, tensors };
}

/** The first key that appears twice at the top level of valid JSON object text, or undefined. Linear. */
export function duplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x22) {
      const start = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      if (depth !== 1) continue;
      let j = i + 1;
      while (/\s/.test(text[j] ?? "")) j++;
      if (text[j] !== ":") continue; // a string value, not a key
      const key = JSON.parse(text.slice(start, i + 1)) as string;
      if (seen.has(key)) return key;
      seen.add(key);
    }
  }
  return undefined;
}

function checkMetadata(entry: unknown, file: string): Record<string, string> {
  const bad = (problem: string): never => {
    throw new SafetensorsFormatError(file, problem, { field: METADATA_KEY });
  };
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) bad("expected an object of strings");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof v !== "string") bad(`value of "${k}" must be a string, found ${JSON.stringify(v)}`);
    out[k] = v as string;
  }
  return out;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function checkEntry(name: string, entry: unknown, ctx: HeaderContext): TensorInfo {
  const bad = (problem: string): never => {
    throw new SafetensorsFormatError(ctx.file, problem, { tensor: name });
  };
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    return bad("expected an object {dtype, shape, data_offsets}");
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDType(dtype)) {
    return bad(`unknown dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(DTYPE_SIZES).join(", ")}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    return bad(`shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    return bad(`data_offsets must be [begin, end] non-negative integers, found ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) bad(`data_offsets [${begin}, ${end}] has begin > end`);
  const expected = byteSize(shape as number[], dtype);
  if (expected === undefined) bad(`shape [${shape.join(", ")}] is too large`);
  if (expected !== end - begin) {
    bad(`shape [${shape.join(", ")}] of ${dtype} needs ${expected} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  if (end > ctx.dataSize) {
    bad(`data_offsets [${begin}, ${end}] run past the end of the data section (${ctx.dataSize} bytes)`);
  }
  return {
    name,
    dtype,
    shape: Object.freeze([...(shape as number[])]),
    file: ctx.realPath,
    offset: ctx.dataStart + begin,
    byteLength: end - begin,
  };
}

/** Bytes for `shape` of `dtype`, or undefined past 2^53. */
export function byteSize(shape: readonly number[], dtype: DType): number | undefined {
  let n = DTYPE_SIZES[dtype];
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

/** Two tensors sharing bytes would let one silently alias another. Empty tensors own no bytes. */
function checkNoOverlap(tensors: Map<string, TensorInfo>, ctx: HeaderContext): void {
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      const range = (t: TensorInfo): string => `[${t.offset - ctx.dataStart}, ${t.offset - ctx.dataStart + t.byteLength}]`;
      throw new SafetensorsFormatError(
        ctx.file,
        `data_offsets ${range(cur)} overlap those of tensor "${prev.name}" ${range(prev)}; expected disjoint ranges`,
        { tensor: cur.name },
      );
    }
  }
}

/** Reads a tensor's raw little-endian bytes into a fresh, 8-byte aligned buffer. */
export async function readTensorData(info: TensorInfo): Promise<Uint8Array> {
  const handle = await fsp.open(info.file, "r");
  try {
    return await readExactly(handle, info.offset, info.byteLength, info.file);
  } finally {
    await handle.close();
  }
}

/** A typed array over the tensor's elements: the natural JS array for each dtype. */
export type TensorArray =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array | BigUint64Array
  | Int32Array | Uint32Array | Int16Array | Int8Array | Uint8Array;

/** Views (or, when misaligned, copies) `bytes` as `T`. */
function view<T>(bytes: Uint8Array, size: number, make: (b: ArrayBufferLike, off: number, len: number) => T): T {
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return make(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}

/**
 * The elements as the matching typed array (a view of `bytes` where alignment allows). F16, BF16 come
 * back as their raw Uint16 bits, F8 types and BOOL as Uint8 (use `toFloat32` for values).
 */
export function toTypedArray(info: TensorInfo, bytes: Uint8Array): TensorArray {
  checkLength(info, bytes);
  switch (info.dtype) {
    case "F64": return view(bytes, 8, (b, o, n) => new Float64Array(b, o, n));
    case "F32": return view(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
    case "I64": return view(bytes, 8, (b, o, n) => new BigInt64Array(b, o, n));
    case "U64": return view(bytes, 8, (b, o, n) => new BigUint64Array(b, o, n));
    case "I32": return view(bytes, 4, (b, o, n) => new Int32Array(b, o, n));
    case "U32": return view(bytes, 4, (b, o, n) => new Uint32Array(b, o, n));
    case "I16": return view(bytes, 2, (b, o, n) => new Int16Array(b, o, n));
    case "F16": case "BF16": case "U16": return view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
    case "I8": return view(bytes, 1, (b, o, n) => new Int8Array(b, o, n));
    case "U8": case "BOOL": case "F8_E4M3": case "F8_E5M2": return bytes;
  }
}

function checkLength(info: TensorInfo, bytes: Uint8Array): void {
  if (bytes.byteLength !== info.byteLength) {
    throw new SafetensorsFormatError(info.file, `expected ${info.byteLength} bytes of data, got ${bytes.byteLength}`, {
      tensor: info.name,
    });
  }
}

let halfTable: Float32Array | undefined;
/** All 65536 float16 bit patterns as float32 (exact: every half value is representable). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) halfTable[h] = sign * mant * 2 ** -24;
    else if (exp === 31) halfTable[h] = mant ? NaN : sign * Infinity;
    else halfTable[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return halfTable;
}

/** float8 e4m3fn (torch.float8_e4m3fn): bias 7, no infinities, S.1111.111 is NaN. */
function e4m3ToFloat(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >> 3) & 0xf;
  const mant = b & 7;
  if (exp === 0) return sign * mant * 2 ** -9;
  if (exp === 15 && mant === 7) return NaN;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** Element values as float32; floating-point dtypes only (F64 is rounded to float32). */
export function toFloat32(info: TensorInfo, bytes: Uint8Array): Float32Array {
  const arr = toTypedArray(info, bytes);
  switch (info.dtype) {
    case "F32": return arr as Float32Array;
    case "F64": return Float32Array.from(arr as Float64Array);
    case "F16": {
      const table = halfToFloatTable();
      const bits = arr as Uint16Array;
      const out = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
      return out;
    }
    case "BF16": {
      // bf16 is the top half of a float32
      const bits = arr as Uint16Array;
      const out = new Uint32Array(bits.length);
      for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
      return new Float32Array(out.buffer);
    }
    case "F8_E5M2": {
      // e5m2 is the top byte of a float16
      const table = halfToFloatTable();
      return Float32Array.from(arr as Uint8Array, (b) => table[b << 8]!);
    }
    case "F8_E4M3": return Float32Array.from(arr as Uint8Array, e4m3ToFloat);
    default:
      throw new TensorShapeError(info.file, info.name, "a floating-point dtype (F64, F32, F16, BF16, F8_*)", info.dtype);
  }
}

/** Reads a floating-point tensor and returns its values as float32. */
export async function readTensorFloat32(info: TensorInfo): Promise<Float32Array> {
  return toFloat32(info, await readTensorData(info));
}
