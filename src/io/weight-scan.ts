/**
 * The load-time check that a model's float weights (F32, F16, BF16) are all finite. A NaN or ±Inf weight
 * otherwise runs without a word and turns every output into NaN (a black image), caught only when a stage
 * output is checked. Here it is a `NonFiniteWeightError` naming the file, the tensor and the element.
 *
 * A value is non-finite exactly when its exponent bits are all ones, so the scan is a mask-and-compare over
 * the raw bits, never a conversion. The bytes are read with fs.read in chunks into a small WebAssembly memory
 * (32 MiB, whatever the checkpoint's size) and compared 16 bytes at a time with WebAssembly SIMD, about 10
 * times faster than a JS loop over a Uint32Array. Three reads are in flight (on libuv's thread pool) while a
 * chunk is scanned: from a cold page cache that read the 2.44 GB transformer at 0.65–1.27 GB/s, against
 * 0.33–0.91 GB/s with one (7 interleaved pairs at load average 9–12, faster in 6). Reading fills the page cache that onnxruntime's
 * mapping of the same files later hits, but not this process's RSS: pages enter RSS only when the mapping
 * touches them (the first run). Its cost is measured in docs/architecture.md; `checkWeights: false`
 * skips it.
 */
import { promises as fsp } from "fs";
import { NonFiniteWeightError } from "./errors";
import { WeightsFileChangedError } from "./file-guard";
import type { DType, TensorInfo } from "./types";

/** Exponent masks: a value is non-finite iff `bits & mask === mask`. */
const EXPONENT_MASKS: Partial<Record<DType, { bits: 16 | 32; mask: number }>> = {
  F32: { bits: 32, mask: 0x7f800000 },
  F16: { bits: 16, mask: 0x7c00 },
  BF16: { bits: 16, mask: 0x7f80 },
};

/** The WebAssembly API used here, typed locally: the project's `lib` has no DOM types, where TypeScript declares it. */
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: unknown };
}
type WasmModule = { readonly __brand: "WebAssembly.Module" };
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Bytes per chunk. */
const CHUNK = 8 << 20;
/** Chunks in the module's memory: one scanned while the others are read (PIXART_SCAN_SLOTS: for the benchmark). */
const SLOTS = Math.max(2, Math.min(8, Number(process.env.PIXART_SCAN_SLOTS) || 4));
/** Bytes the SIMD loop takes per iteration (4 × v128); the rest of a chunk is checked in JS. */
const STRIDE = 64;

export interface WeightCheckOptions {
  /**
   * Scan the float weights (F32, F16, BF16) a model maps for NaN and ±Inf when it is loaded (default true): a
   * `NonFiniteWeightError` names the file, tensor and element. false skips the scan, which reads every mapped
   * byte once (docs/architecture.md has its cost); a non-finite weight is then caught only when a stage's
   * output is checked (`NonFiniteTensorError`), or not at all when calling a model directly.
   */
  checkWeights?: boolean;
}

export interface WeightScanResult {
  /** Float tensors scanned (other dtypes are skipped: integers are always finite, F64/F8 are not mapped). */
  tensors: number;
  bytes: number;
  milliseconds: number;
}

/** Whether `dtype` is one the scan checks. */
export function isScannedDType(dtype: DType): boolean {
  return EXPONENT_MASKS[dtype] !== undefined;
}

/**
 * Throws a `NonFiniteWeightError` (file, tensor, element index and value) for the first NaN or ±Inf among the
 * F32, F16 and BF16 tensors of `tensors`; other dtypes are skipped. Each tensor is read once, in file order.
 */
export async function checkFiniteWeights(tensors: Iterable<TensorInfo>): Promise<WeightScanResult> {
  const start = performance.now();
  const list = [...new Map([...tensors].filter((t) => isScannedDType(t.dtype)).map((t) => [`${t.file}\0${t.offset}`, t])).values()]
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.offset - b.offset));
  const pieces: Piece[] = [];
  for (const info of list) {
    for (let at = 0; at < info.byteLength; at += CHUNK) pieces.push({ info, at, length: Math.min(CHUNK, info.byteLength - at) });
  }
  // Reused between loads (its 32 MiB are paged in once), unless two scans run at the same time.
  const scanner = idleScanner ?? new Scanner();
  idleScanner = undefined;
  // One open per file, shared by the reads in flight (so the promise is kept, not the handle).
  const handles = new Map<string, Promise<fsp.FileHandle>>();
  const handle = (file: string): Promise<fsp.FileHandle> => {
    let h = handles.get(file);
    if (h === undefined) handles.set(file, (h = fsp.open(file, "r")));
    return h;
  };
  const read = async (p: Piece, slot: number): Promise<void> => {
    const h = await handle(p.info.file);
    const { bytesRead } = await h.read(scanner.bytes, slot * CHUNK, p.length, p.info.offset + p.at);
    if (bytesRead !== p.length) {
      throw new WeightsFileChangedError(p.info.file, `ended at byte ${p.info.offset + p.at + bytesRead} while tensor "${p.info.name}" was ` +
        `read (it needs bytes up to ${p.info.offset + p.info.byteLength}): truncated since it was opened; check the file and load again`);
    }
  };
  let bytes = 0;
  // Piece i is read into slot i % SLOTS; up to SLOTS − 1 reads are in flight (on libuv's pool) while one is scanned.
  const reads: Promise<void>[] = [];
  const startRead = (i: number): void => {
    if (i >= pieces.length) return;
    const r = read(pieces[i]!, i % SLOTS);
    r.catch(() => undefined); // rethrown where it is awaited; not unhandled if a scan throws first
    reads[i % SLOTS] = r;
  };
  try {
    for (let i = 0; i < SLOTS - 1; i++) startRead(i);
    for (let i = 0; i < pieces.length; i++) {
      await reads[i % SLOTS];
      startRead(i + SLOTS - 1); // into the slot of piece i − 1, scanned already
      scanner.check(pieces[i]!, (i % SLOTS) * CHUNK);
      bytes += pieces[i]!.length;
    }
  } finally {
    await Promise.allSettled(reads); // reads still in flight write into the scanner's memory
    idleScanner = scanner;
    await Promise.all([...handles.values()].map(async (h) => (await h.catch(() => undefined))?.close()));
  }
  return { tensors: list.length, bytes, milliseconds: performance.now() - start };
}

/** `length` bytes of `info` from byte `at` of the tensor. */
interface Piece {
  info: TensorInfo;
  at: number;
  length: number;
}

let idleScanner: Scanner | undefined;

class Scanner {
  private readonly memory = new wasm.Memory({ initial: (SLOTS * CHUNK) / 65536, maximum: (SLOTS * CHUNK) / 65536 });
  private readonly fns = new wasm.Instance(scanModule(), { env: { mem: this.memory } }).exports as unknown as ScanExports;
  /** The memory as bytes (fixed size, so this view stays valid). */
  readonly bytes = new Uint8Array(this.memory.buffer);
  private readonly view = new DataView(this.memory.buffer);

  /** Throws for the first non-finite element of the piece now at `base` in memory. */
  check(p: Piece, base: number): void {
    const { bits, mask } = EXPONENT_MASKS[p.info.dtype]!;
    const simd = p.length - (p.length % STRIDE);
    const hit = (bits === 32 ? this.fns.scan32 : this.fns.scan16)(base, base + simd, mask) !== 0;
    // Pieces start at multiples of CHUNK within the tensor, so element boundaries line up with `base`.
    if (!hit && simd === p.length) return;
    const size = bits / 8;
    for (let off = hit ? 0 : simd; off < p.length; off += size) {
      const v = bits === 32 ? this.view.getUint32(base + off, true) : this.view.getUint16(base + off, true);
      if ((v & mask) === mask) throw nonFinite(p.info, (p.at + off) / size, v, bits, mask);
    }
  }
}

function nonFinite(info: TensorInfo, index: number, v: number, bits: 16 | 32, mask: number): NonFiniteWeightError {
  const nan = (v & (bits === 32 ? 0x007fffff : ~mask & 0x7fff)) !== 0;
  const negative = (v & (bits === 32 ? 0x80000000 : 0x8000)) !== 0;
  const value = nan ? NaN : negative ? -Infinity : Infinity;
  const at = info.shape.length > 1 ? ` (index [${unravel(index, info.shape).join(", ")}] of shape [${info.shape.join(", ")}])` : "";
  return new NonFiniteWeightError(info.file, info.name, `element ${index}${at} is ${value} (${info.dtype} bits 0x${(v >>> 0).toString(16)}); ` +
    "the checkpoint is damaged or was saved from a diverged model. (Load with checkWeights: false to skip this check.)", { index, value });
}

function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = index % shape[d]!;
    index = Math.floor(index / shape[d]!);
  }
  return out;
}

interface ScanExports {
  /** 1 if any 32-bit lane of [ptr, end) has `lane & mask === mask`; end − ptr a multiple of 64. */
  scan32(ptr: number, end: number, mask: number): number;
  /** The same over 16-bit lanes (mask in the low 16 bits). */
  scan16(ptr: number, end: number, mask: number): number;
}

let compiled: WasmModule | undefined;

/**
 * The module, assembled here (it is small, and a build step or a dependency for it would be larger):
 *
 *     (func $scanN (param $p i32) (param $end i32) (param $mask i32) (result i32) (local $m v128) (local $acc v128)
 *       (local.set $m (iNxM.splat (local.get $mask)))
 *       (block (loop
 *         (br_if 1 (i32.ge_u (local.get $p) (local.get $end)))
 *         ;; 4 times, at offsets 0, 16, 32, 48:
 *         (local.set $acc (v128.or (local.get $acc) (iNxM.eq (v128.and (v128.load offset=k (local.get $p)) (local.get $m)) (local.get $m))))
 *         (local.set $p (i32.add (local.get $p) (i32.const 64)))
 *         (br 0)))
 *       (v128.any_true (local.get $acc)))
 */
function scanModule(): WasmModule {
  if (compiled) return compiled;
  const uleb = (n: number): number[] => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return out;
  };
  const section = (id: number, bytes: number[]): number[] => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  const SIMD = 0xfd;
  const get = (i: number): number[] => [0x20, i];
  const set = (i: number): number[] => [0x21, i];
  const body = (splat: number, eq: number): number[] => {
    const lanes: number[] = [];
    for (let k = 0; k < STRIDE / 16; k++) {
      // v128.load align=2^0 (the hint only; unaligned loads are allowed) offset=16k
      lanes.push(...get(4), ...get(0), SIMD, 0x00, 0x00, ...uleb(16 * k), ...get(3), SIMD, 0x4e, ...get(3), SIMD, eq, SIMD, 0x50, ...set(4));
    }
    const code = [
      ...get(2), SIMD, splat, ...set(3),
      0x02, 0x40, 0x03, 0x40, // block, loop
      ...get(0), ...get(1), 0x4f, 0x0d, 1, // i32.ge_u, br_if 1
      ...lanes,
      ...get(0), 0x41, 0xc0, 0x00, 0x6a, ...set(0), // i32.const 64 (signed LEB128), i32.add
      0x0c, 0, 0x0b, 0x0b, // br 0, end, end
      ...get(4), SIMD, 0x53, 0x0b, // v128.any_true, end
    ];
    const fn = [1, 2, 0x7b, ...code]; // one local group: 2 × v128
    return [...uleb(fn.length), ...fn];
  };
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f]), // type: (i32, i32, i32) → i32
    ...section(2, [1, ...name("env"), ...name("mem"), 0x02, 0x00, 0x00]), // import env.mem, a memory of min 0 pages
    ...section(3, [2, 0, 0]), // two functions of type 0
    ...section(7, [2, ...name("scan32"), 0x00, 0, ...name("scan16"), 0x00, 1]),
    ...section(10, [2, ...body(0x11, 0x37), ...body(0x10, 0x2d)]), // i32x4.splat/eq, i16x8.splat/eq
  ];
  return (compiled = new wasm.Module(new Uint8Array(bytes)));
}
