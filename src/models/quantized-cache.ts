/**
 * Quantized weights cached on disk, so only the first load pays for quantization and every later one is a
 * memory map like any checkpoint.
 *
 * One .safetensors file per (checkpoint, quantization): it holds only the quantized tensors (see quantize.ts
 * for names and layouts); everything else (norms, embeddings, biases, the relative position bias) is still
 * read from the original checkpoint through a WeightSource over both. The file name carries a hash of the
 * source files' real paths, sizes and modification times, the quantization spec (method, block size, the
 * tensors and their shapes/dtypes) and the format version, so a changed checkpoint or a new format gets a new
 * file. Files are written to a temporary name and renamed (atomic), and every cached file's header, metadata
 * and tensor list are validated when it is opened: a truncated or foreign file is rebuilt.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promises as fsp } from "fs";
import { performance } from "perf_hooks";
import { CheckpointError, TensorShapeError } from "../io/errors";
import { DTYPE_SIZES, openSafetensors, toFloat32, type SafetensorsFile } from "../io/safetensors";
import { replaceFileAtomically, writeAll } from "../io/atomic-file";
import { layoutSafetensors } from "../io/safetensors-writer";
import type { TensorInfo, WeightSource } from "../io/types";
import type { SessionConfig } from "../onnx/session";
import {
  INT4_BLOCK_SIZE, NonFiniteRowError, NonFiniteWeightError, QUANTIZABLE_DTYPES, QuantizeDtypeError, allocInt4, allocInt8,
  collectLinears, parseInt4AccuracyLevel, parseQuantizeMethod, quantizeInt4Rows, quantizeInt8Rows, quantizedLinear,
  quantizedTensors, type Int4AccuracyLevel, type LinearFn, type LinearSpec, type QuantizeMethod, type QuantizedTensorSpec,
} from "./quantize";

/** Bumped whenever the bytes written for the same inputs would change. */
export const QUANTIZED_FORMAT_VERSION = "1";
const FORMAT_NAME = "pixart-ts-quantized";

/** Load options shared by the models that can run quantized. */
export interface QuantizeLoadOptions {
  /** Quantize every Linear weight: "int8" (DynamicQuantizeMatMul) or "int4" (MatMulNBits, blocks of 32). */
  quantize?: QuantizeMethod;
  /** Folder for the quantized files; default `$PIXART_TS_CACHE/quantized`, else `~/.cache/pixart-ts/quantized`. */
  cacheDir?: string;
  /** MatMulNBits accuracy_level for int4: 0 (default, fp32 compute) or 4 (int8 activations; needs prepacking). */
  int4AccuracyLevel?: Int4AccuracyLevel;
  /** Receives one line when quantization starts, and one on cache hit or after writing the cache. */
  log?: (message: string) => void;
}

/** What happened at load, for memory reports and notebooks. */
export interface QuantizationReport {
  method: QuantizeMethod;
  /** The cached file the quantized tensors are mapped from. */
  cacheFile: string;
  /** True when the file was found valid and used as is (no quantization at this load). */
  cacheHit: boolean;
  /** Why an existing file was not used (e.g. a truncated file); absent when there was none or it was used. */
  rebuiltBecause?: string;
  /** Time spent validating the cached file (hit) or reading, quantizing and writing it (miss). */
  milliseconds: number;
  /** Number of Linear weights quantized. */
  linears: number;
  /** Size of the cached file. */
  fileBytes: number;
}

/** The cache folder cannot be created or written, or lacks space. */
export class QuantizeCacheError extends CheckpointError {
  override name = "QuantizeCacheError";
}

export function defaultQuantizedCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PIXART_TS_CACHE) return path.join(env.PIXART_TS_CACHE, "quantized");
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "pixart-ts", "quantized");
}

export interface PreparedQuantization {
  /** The cached quantized tensors over the original checkpoint. */
  weights: WeightSource;
  /** The linear function to build the graph with. */
  linear: LinearFn;
  report: QuantizationReport;
  /** Session options adjusted for the quantized graph (int4 accuracy level 4 needs prepacking). */
  session<T extends SessionConfig>(opts: T): T;
}

/**
 * Finds (or makes) the quantized weights for every Linear that `build` asks for. `build` is run once with a
 * recording linear function to learn the Linears and their shapes; the caller then builds the real graph
 * with the returned `weights` and `linear` (Linears left out by `include` stay in fp32). `label` names the
 * component in file names and messages.
 */
export async function prepareQuantized(
  source: WeightSource,
  build: (linear: LinearFn) => unknown,
  opts: QuantizeLoadOptions & { label: string; include?: (linear: LinearSpec) => boolean },
): Promise<PreparedQuantization> {
  const method = parseQuantizeMethod(opts.quantize);
  const requestedLevel = parseInt4AccuracyLevel(opts.int4AccuracyLevel); // validated even when unused
  const accuracyLevel = method === "int4" ? requestedLevel : 0;
  const linears = collectLinears(build).filter(opts.include ?? (() => true));
  const { cache, report } = await openOrQuantize(source, linears, method, opts);
  return {
    weights: overlayWeights(cache, source),
    linear: quantizedLinear(method, { accuracyLevel }),
    report,
    // MatMulNBits only takes its int8-activation path on prepacked weights.
    session: (o) => (accuracyLevel === 4 && o.prepack === undefined ? { ...o, prepack: true } : o),
  };
}

/** The cached file for these Linears, opened (validated) or written first. */
export async function openOrQuantize(
  source: WeightSource,
  linears: readonly LinearSpec[],
  method: QuantizeMethod,
  opts: QuantizeLoadOptions & { label: string },
): Promise<{ cache: SafetensorsFile; report: QuantizationReport }> {
  const log = opts.log ?? (() => undefined);
  const infos = linears.map((l) => checkQuantizable(source.get(`${l.prefix}.weight`), l));
  const specs = linears.flatMap((l) => Object.values(quantizedTensors(method, l)).filter((t): t is QuantizedTensorSpec => t !== undefined));
  const key = cacheKey(method, linears, infos);
  const dir = opts.cacheDir ?? defaultQuantizedCacheDir();
  const file = path.join(dir, `${safeLabel(opts.label)}-${method}-${key.slice(0, 24)}.safetensors`);

  const t0 = performance.now();
  const found = await openValid(file, key, specs);
  const base = { method, cacheFile: file, linears: linears.length };
  if (typeof found !== "string") {
    const report = { ...base, cacheHit: true, milliseconds: performance.now() - t0, fileBytes: found.fileSize };
    log(`${opts.label}: ${method} weights loaded from cache ${file}`);
    return { cache: found, report };
  }
  log(`${opts.label}: quantizing ${linears.length} Linear weights to ${method} (first load; cached at ${file})`);
  await writeQuantized(file, method, linears, infos, specs, key);
  const cache = await openSafetensors(file);
  const report: QuantizationReport = { ...base, cacheHit: false, milliseconds: performance.now() - t0, fileBytes: cache.fileSize };
  if (found !== "absent") report.rebuiltBecause = found;
  log(`${opts.label}: quantized to ${method} in ${(report.milliseconds / 1000).toFixed(1)} s${found !== "absent" ? ` (rebuilt: ${found})` : ""}`);
  return { cache, report };
}

function checkQuantizable(info: TensorInfo, l: LinearSpec): TensorInfo {
  if (info.shape.length !== 2 || info.shape[0] !== l.shape[0] || info.shape[1] !== l.shape[1]) {
    throw new TensorShapeError(info.file, info.name, l.shape, info.shape);
  }
  if (!QUANTIZABLE_DTYPES.includes(info.dtype)) throw new QuantizeDtypeError(info.file, info.name, info.dtype);
  return info;
}

function safeLabel(label: string): string {
  return label.replace(/[^A-Za-z0-9_-]+/g, "_");
}

/**
 * sha256 over everything the file's bytes depend on: the format, the method and block size, each source
 * file's real path, size and mtime (nanoseconds), and every quantized tensor with its stored dtype and shape.
 */
export function cacheKey(method: QuantizeMethod, linears: readonly LinearSpec[], infos: readonly TensorInfo[]): string {
  const files = [...new Set(infos.map((i) => i.file))].sort().map((f) => {
    const st = fs.statSync(f, { bigint: true });
    return [f, String(st.size), String(st.mtimeNs)];
  });
  const tensors = linears.map((l, i) => [l.prefix, l.shape, infos[i].dtype, infos[i].shape]);
  const spec = { format: FORMAT_NAME, version: QUANTIZED_FORMAT_VERSION, method, blockSize: method === "int4" ? INT4_BLOCK_SIZE : null, files, tensors };
  return crypto.createHash("sha256").update(JSON.stringify(spec)).digest("hex");
}

/** The opened file, or why it cannot be used ("absent" when there is none). */
async function openValid(file: string, key: string, specs: readonly QuantizedTensorSpec[]): Promise<SafetensorsFile | string> {
  if (!fs.existsSync(file)) return "absent";
  let st: SafetensorsFile;
  try {
    st = await openSafetensors(file);
  } catch (e) {
    return `invalid file (${(e as Error).message})`;
  }
  const meta = st.metadata ?? {};
  if (meta.format !== FORMAT_NAME || meta.version !== QUANTIZED_FORMAT_VERSION || meta.key !== key) {
    return `metadata does not match (format ${meta.format}, version ${meta.version})`;
  }
  for (const s of specs) {
    const t = st.tensors.get(s.name);
    if (!t || t.dtype !== s.dtype || t.shape.join(",") !== s.shape.join(",")) return `tensor ${s.name} missing or of another dtype/shape`;
  }
  return st;
}

/** Cached tensors first, then the checkpoint. */
export function overlayWeights(cache: SafetensorsFile, base: WeightSource): WeightSource {
  return {
    dir: base.dir,
    has: (name) => cache.tensors.has(name) || base.has(name),
    get: (name) => cache.tensors.get(name) ?? base.get(name),
    names: () => [...new Set([...cache.tensors.keys(), ...base.names()])],
  };
}

/** Rows read per chunk: about 8 MiB of source data, so a 9.5 GB checkpoint never sits in memory. */
const CHUNK_BYTES = 8 << 20;

/**
 * Reads each source weight once, in row chunks and in file order, quantizes it and writes its tensors at the
 * positions the io writer's layout gives them (the layout orders tensors by dtype, so writing through
 * `writeSafetensors`' one-tensor-at-a-time stream would need every scale before the first int8 tensor).
 */
async function writeQuantized(
  file: string, method: QuantizeMethod, linears: readonly LinearSpec[], infos: readonly TensorInfo[],
  specs: readonly QuantizedTensorSpec[], key: string,
): Promise<void> {
  const dir = path.dirname(file);
  const metadata = { format: FORMAT_NAME, version: QUANTIZED_FORMAT_VERSION, method, key };
  const layout = layoutSafetensors(file, specs, metadata);
  await prepareDir(dir, layout.fileSize);
  const at = new Map(layout.entries.map((e) => [e.name, layout.dataStart + e.begin]));
  const openError = (e: unknown) =>
    new QuantizeCacheError(dir, `cannot write the quantized weights here (${(e as Error).message}); pass another cacheDir`, { cause: e });
  await replaceFileAtomically(file, async (out) => {
    await writeAll(out, layout.bytes, 0);
    const order = linears.map((l, i) => ({ l, info: infos[i] })).sort((a, b) => a.info.file.localeCompare(b.info.file) || a.info.offset - b.info.offset);
    for (const { l, info } of order) {
      const t = quantizedTensors(method, l);
      for (const [name, data] of await quantizeOne(method, l, info, t)) await writeAll(out, data, at.get(name)!);
    }
    await out.truncate(layout.fileSize); // a trailing empty tensor still fixes the size
  }, { sync: true, openError });
}

/** One weight → its quantized tensors' bytes, by name. */
async function quantizeOne(
  method: QuantizeMethod, l: LinearSpec, info: TensorInfo, t: ReturnType<typeof quantizedTensors>,
): Promise<[string, Uint8Array][]> {
  const [out, inp] = l.shape;
  const bytes = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (method === "int8") {
    const w = allocInt8(out, inp);
    await forEachRowChunk(info, out, inp, (chunk, row) => quantizeInt8Rows(chunk, row, inp, w));
    return [[t.q.name, bytes(w.q)], [t.scales.name, bytes(w.scales)]];
  }
  const w = allocInt4(out, inp);
  await forEachRowChunk(info, out, inp, (chunk, row) => quantizeInt4Rows(chunk, row, inp, w));
  return [[t.q.name, w.b], [t.scales.name, bytes(w.scales)], [t.zeroPoints!.name, w.zeroPoints]];
}

async function forEachRowChunk(
  info: TensorInfo, rows: number, cols: number, fn: (chunk: Float32Array, firstRow: number) => void,
): Promise<void> {
  const elem = DTYPE_SIZES[info.dtype];
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / (cols * elem)));
  const handle = await fsp.open(info.file, "r");
  try {
    for (let row = 0; row < rows; row += perChunk) {
      const n = Math.min(perChunk, rows - row);
      const byteLength = n * cols * elem;
      const raw = await readAt(handle, info.offset + row * cols * elem, byteLength, info);
      const chunk = toFloat32({ ...info, shape: [n, cols], byteLength }, raw);
      try {
        fn(chunk, row);
      } catch (e) {
        if (e instanceof NonFiniteRowError) {
          throw new NonFiniteWeightError(info.file, info.name, `cannot quantize: row ${e.row} holds an infinite or NaN value`, { row: e.row });
        }
        throw e;
      }
    }
  } finally {
    await handle.close();
  }
}

async function readAt(handle: fsp.FileHandle, position: number, length: number, info: TensorInfo): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new CheckpointError(info.file, `file ended at byte ${position + done} (changed while quantizing?)`, { tensor: info.name });
    done += bytesRead;
  }
  return buf;
}

/** Creates the folder and refuses early when the file cannot fit (a full disk mid-write is a worse failure). */
async function prepareDir(dir: string, bytes: number): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new QuantizeCacheError(dir, `cannot create the cache folder (${(e as Error).message}); pass another cacheDir`, { cause: e });
  }
  const stat = await fsp.statfs(dir).catch(() => undefined);
  if (stat && stat.bavail * stat.bsize < bytes) {
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
    throw new QuantizeCacheError(dir, `needs ${gib(bytes)} for the quantized weights, only ${gib(stat.bavail * stat.bsize)} free; free space or pass another cacheDir`);
  }
}
