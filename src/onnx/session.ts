/**
 * onnxruntime sessions for built graphs, with the options that keep weights memory-mapped:
 * no prepacking (MLAS would copy every MatMul weight into anonymous memory), no CPU arena unless asked for
 * (activations are returned to the OS after each run), weights read from the checkpoint folder.
 */
import { constants as bufferConstants } from "buffer";
import { promises as fsp } from "fs";
import * as path from "path";
import * as v8 from "v8";
import * as vm from "vm";
import { threadId } from "worker_threads";
import * as ort from "onnxruntime-node";
import { needsX64QuantPrecision } from "./cpu-features";
import type { BuiltModel } from "./graph";
import { CheckpointError } from "../io/errors";
import { WeightsFileChangedError } from "../io/file-guard";
import { assertCuda, deviceOfProviders, executionProvidersFor, GpuUnavailableError, parseDevice, type Device } from "./device";

const BUFFER_MAX_LENGTH = bufferConstants.MAX_LENGTH;

/** An onnxruntime execution provider: its name, or its name with provider options. */
export type ExecutionProvider = string | { readonly name: string; readonly [option: string]: unknown };

export interface SessionConfig {
  /** Threads for one operator; defaults to onnxruntime's choice (all cores). */
  intraOpNumThreads?: number;
  /**
   * Prepack MatMul weights. Default false. Measured on the PixArt-Σ transformer (AVX-512 EPYC, docs/benchmarks.md):
   * a 512 px step −14 % CPU time (−4 % wall with 2 threads), a 1024 px step 3–11 % faster; but session creation
   * packs every weight into a full anonymous copy (+2.3 GiB for the fp32 transformer) instead of mapping the
   * checkpoint, and the fp32 results differ from the unpacked ones by rounding (~1e-6).
   */
  prepack?: boolean;
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * "cpu" (default), "cuda" or "cuda:N": onnxruntime's CUDA provider (install it with `npm run gpu:install`,
   * docs/gpu.md), with the CPU provider behind it for nodes CUDA has no kernel for. Overrides executionProviders.
   */
  device?: Device;
  /**
   * onnxruntime execution providers in order of preference, by name ("cpu", "cuda", ...) or as
   * `{ name, ...options }`. Default ["cpu"]. Typed here rather than as onnxruntime-common's type, which
   * pulls in DOM types (WebGLTexture, ImageData) that a Node project with `lib: ["ES2022"]` does not have.
   */
  executionProviders?: readonly ExecutionProvider[];
  /**
   * Run the session on the calling thread instead of in a worker thread (the default for models).
   * `run()` then blocks the event loop for the whole inference; meant for tests and benchmarks.
   */
  inProcess?: boolean;
  /**
   * onnxruntime graph optimizations, default "all". "extended" skips the layout transforms that copy conv
   * weights into blocked (NCHWc) anonymous memory: measured on the SDXL VAE decoder at 1024 px, peak RSS
   * 2.84 GB instead of 3.37 GB for ~20% more CPU time.
   */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /**
   * onnxruntime's CPU memory arena (default off here; the transformer and the VAE turn it on). Off, every run maps
   * its activations afresh and unmaps them after, so nothing stays allocated between runs but each run page-faults
   * all of them in again. On, the arena keeps the largest run's activations mapped until the session is released
   * (release() still returns them to the OS).
   */
  memoryArena?: boolean;
  /**
   * onnxruntime's memory-pattern planning (default on; the VAE turns it off); off can lower the peak of
   * activation-heavy graphs. With the arena on, a pattern is one block of the whole run's peak, requested from the
   * second run of a shape on: the arena grows by that block beside the chunks the first run left.
   */
  enableMemPattern?: boolean;
  /**
   * A path prefix: onnxruntime profiles every run and writes its per-node trace (Chrome trace JSON) to
   * `<prefix>.<thread>.<n>_<date>.json` when the session is released. For benchmarks (bench/transformer-profile.ts).
   */
  profile?: string;
  /**
   * Read the weight files into onnxruntime's own memory when the session is made, instead of mapping them (default
   * false). A checkpoint file truncated under a mapped session kills the process with SIGBUS at the next read of a
   * vanished page, which no JavaScript can catch; file-guard catches a change before each run, but not one made
   * during a run. With copied weights nothing done to the files afterwards can reach the session. Costs a read of
   * each whole file at load and anonymous memory for the weights, no longer shared with the page cache or other
   * processes; a file briefly sits in this process's memory twice while the session is made (measured in
   * docs/architecture.md). Each file must be under 4 GiB (Node's Buffer limit).
   */
  copyWeights?: boolean;
}

/** Every SessionConfig field: typed as a full record so that a new field fails to compile until listed. */
const SESSION_CONFIG_FIELDS: Record<keyof SessionConfig, true> = {
  intraOpNumThreads: true, prepack: true, logSeverityLevel: true, device: true, executionProviders: true, inProcess: true,
  graphOptimizationLevel: true, memoryArena: true, enableMemPattern: true, profile: true, copyWeights: true,
};

/**
 * Just the SessionConfig fields of a wider options object. Loaders pass theirs whole (with functions such as
 * a `linear` builder or a `log` callback), which cannot be structured-cloned to a session worker.
 */
export function pickSessionConfig(opts: SessionConfig): SessionConfig {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(SESSION_CONFIG_FIELDS) as (keyof SessionConfig)[]) {
    if (opts[key] !== undefined) out[key] = opts[key];
  }
  return out as SessionConfig;
}

/**
 * What the models need from a session, whether it lives on this thread (ort.InferenceSession) or in a
 * worker (WorkerSession).
 * @internal (not in the shipped types, which must not reach onnxruntime-common's DOM-typed declarations)
 */
export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, ort.Tensor>): Promise<Readonly<Record<string, ort.Tensor>>>;
  /** Frees the session's memory now (and ends its thread, for a worker). */
  release(): Promise<void>;
}

/** The parts of a built graph a session is made from (all of them plain data, so they can go to a worker). @internal */
export type SessionModel = Pick<BuiltModel, "bytes" | "externalDataFolder" | "hasCastWeights" | "weightFiles">;

let profiledSessions = 0;

/** @internal */
export async function createSession(model: SessionModel, config: SessionConfig = {}): Promise<ort.InferenceSession> {
  const session: Record<string, string> = {};
  const copied = config.copyWeights && model.externalDataFolder ? await readWeightFiles(model.externalDataFolder, model.weightFiles) : undefined;
  if (model.externalDataFolder && !copied) session["model_external_initializers_file_folder_path"] = model.externalDataFolder;
  if (!config.prepack) session["disable_prepacking"] = "1";
  // Exact int8 matmuls (DynamicQuantizeMatMul) on x64 CPUs without VNNI; on VNNI CPUs the option would only slow
  // them (cpu-features.ts). It changes nothing for float graphs.
  if (needsX64QuantPrecision()) session["x64quantprecision"] = "1";
  const extra: Record<string, Record<string, string>> = { session };
  // Folding Cast(16-bit weight) would materialize an fp32 copy of each weight at load.
  if (model.hasCastWeights) extra["optimization"] = { disable_specified_optimizers: "ConstantFolding" };
  const options: ort.InferenceSession.SessionOptions = {
    enableCpuMemArena: config.memoryArena ?? false,
    graphOptimizationLevel: config.graphOptimizationLevel ?? "all",
    logSeverityLevel: config.logSeverityLevel ?? 3,
    executionProviders: sessionProviders(config),
    extra,
  };
  // onnxruntime copies these into its own memory (checked: overwriting the buffers after the session is made changes
  // no output), so they are garbage once the session exists.
  if (copied) options.externalData = copied;
  // The binding rejects an explicit `undefined`.
  if (config.intraOpNumThreads !== undefined) options.intraOpNumThreads = config.intraOpNumThreads;
  if (config.enableMemPattern !== undefined) options.enableMemPattern = config.enableMemPattern;
  if (config.profile !== undefined) {
    // Unique per session: onnxruntime names the file by the second it was created in.
    options.enableProfiling = true;
    options.profileFilePrefix = `${config.profile}.${threadId}.${++profiledSessions}`;
  }
  if (!copied) return createOrtSession(model.bytes, options);
  try {
    return await createOrtSession(model.bytes, options);
  } finally {
    // The read buffers are garbage now, but an idle worker's heap is not collected until it allocates again, so
    // they would stay (measured on the 2.4 GB transformer: RSS +4.3 GiB half a second after the load without this,
    // +2.0–2.3 GiB with it, i.e. onnxruntime's copy alone).
    options.externalData = undefined;
    copied.splice(0);
    collectGarbage();
  }
}

async function createOrtSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  const device = deviceOfProviders(options.executionProviders);
  if (device.kind === "cpu") return ort.InferenceSession.create(bytes, options);
  assertCuda(device);
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    // The driver or a CUDA library could not be loaded after all (onnxruntime logs which one to stderr).
    if (e instanceof Error && /Failed to load shared library|CUDA failure|cudaError|no CUDA-capable/i.test(e.message)) {
      throw new GpuUnavailableError(`creating a session on "cuda:${device.id}" failed: ${e.message} (run \`npm run gpu:install -- --check\`; docs/gpu.md)`);
    }
    throw e;
  }
}

let gc: (() => void) | undefined;
/** A full garbage collection of this thread's heap, without --expose-gc on the command line. */
function collectGarbage(): void {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
}

/**
 * Each weight file read whole, named by its external-data location (relative to `folder`, as in the graph), for
 * `SessionOptions.externalData`. Read in chunks: one fs read is limited to 2 GiB.
 */
async function readWeightFiles(folder: string, files: readonly string[]): Promise<{ path: string; data: Uint8Array }[]> {
  const out: { path: string; data: Uint8Array }[] = [];
  for (const file of files) {
    const handle = await fsp.open(file, "r");
    try {
      const { size } = await handle.stat();
      if (size > BUFFER_MAX_LENGTH) {
        throw new CheckpointError(file, `is ${size} bytes; copyWeights reads each file whole, which Node limits to ${BUFFER_MAX_LENGTH} bytes ` +
          "(load it mapped, without copyWeights)");
      }
      const data = Buffer.allocUnsafeSlow(size);
      for (let done = 0; done < size;) {
        const { bytesRead } = await handle.read(data, done, Math.min(1 << 30, size - done), done);
        if (bytesRead === 0) throw new WeightsFileChangedError(file, `ended at byte ${done} of ${size} while it was read (truncated meanwhile?)`);
        done += bytesRead;
      }
      out.push({ path: path.relative(folder, file), data });
    } finally {
      await handle.close();
    }
  }
  return out;
}

/** The execution providers of a config: from `device` when given, else `executionProviders`, else the CPU. @internal */
export function sessionProviders(config: SessionConfig): ort.InferenceSession.ExecutionProviderConfig[] {
  if (config.device !== undefined) return executionProvidersFor(parseDevice(config.device, "device"));
  return [...(config.executionProviders ?? ["cpu"])] as ort.InferenceSession.ExecutionProviderConfig[];
}
