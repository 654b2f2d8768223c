/**
 * Where a session runs: "cpu" (default) or "cuda" / "cuda:N" (onnxruntime's CUDA execution provider on GPU N).
 *
 * onnxruntime-node ships only the CPU library; the CUDA provider is an opt-in install (`npm run gpu:install`,
 * docs/gpu.md) that links libonnxruntime_providers_{shared,cuda}.so beside libonnxruntime.so.1, where
 * onnxruntime's provider bridge dlopens them from. Before asking onnxruntime for CUDA we check that those files
 * and a driver are there, so that the error says what to do instead of onnxruntime's "Failed to load shared library".
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type * as ort from "onnxruntime-node";

export type Device = "cpu" | "cuda" | `cuda:${number}`;

export interface ParsedDevice {
  kind: "cpu" | "cuda";
  /** GPU index for "cuda" (0 unless "cuda:N"). */
  id: number;
}

/** A device string that is not "cpu", "cuda" or "cuda:N". */
export class DeviceArgumentError extends Error {
  override name = "DeviceArgumentError";
  constructor(readonly argument: string, value: unknown) {
    super(`${argument}: expected "cpu", "cuda" or "cuda:N" (N a GPU index), got ${JSON.stringify(value)}`);
  }
}

/** CUDA was asked for but cannot be used here; the message says what was found and how to fix it. */
export class GpuUnavailableError extends Error {
  override name = "GpuUnavailableError";
}

export function parseDevice(value: unknown, argument = "device"): ParsedDevice {
  if (value === undefined || value === "cpu") return { kind: "cpu", id: 0 };
  const m = typeof value === "string" ? /^cuda(?::(\d+))?$/.exec(value) : null;
  if (!m) throw new DeviceArgumentError(argument, value);
  return { kind: "cuda", id: m[1] === undefined ? 0 : Number(m[1]) };
}

export function deviceName(d: ParsedDevice): Device {
  return d.kind === "cpu" ? "cpu" : d.id === 0 ? "cuda" : `cuda:${d.id}`;
}

/**
 * onnxruntime execution providers for a device. CUDA lists the CPU provider after it: onnxruntime assigns any
 * node without a CUDA kernel (e.g. com.microsoft DynamicQuantizeMatMul of the int8 T5) to the CPU and copies
 * across, instead of failing.
 * @internal
 */
export function executionProvidersFor(device: ParsedDevice): ort.InferenceSession.ExecutionProviderConfig[] {
  return device.kind === "cpu" ? ["cpu"] : [{ name: "cuda", deviceId: device.id }, "cpu"];
}

/** The device of a list of execution providers (for configs that give `executionProviders` directly). @internal */
export function deviceOfProviders(eps: readonly ort.InferenceSession.ExecutionProviderConfig[] | undefined): ParsedDevice {
  for (const ep of eps ?? []) {
    const name = typeof ep === "string" ? ep : ep.name;
    if (name === "cuda") return { kind: "cuda", id: typeof ep === "string" ? 0 : Number((ep as { deviceId?: number }).deviceId ?? 0) };
  }
  return { kind: "cpu", id: 0 };
}

/** The provider libraries `npm run gpu:install` links into onnxruntime-node's native folder. */
export const CUDA_PROVIDER_FILES = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"] as const;

/** onnxruntime-node's native folder: where libonnxruntime.so.1 is and where providers are looked for. */
export function onnxruntimeNativeDir(): string {
  const pkg = path.dirname(require.resolve("onnxruntime-node/package.json"));
  return path.join(pkg, "bin", "napi-v6", process.platform, process.arch);
}

export interface CudaStatus {
  available: boolean;
  /** Why not, with what to do (when not available). */
  reason?: string;
  /** NVIDIA driver version from nvidia-smi, when there is one. */
  driver?: string;
  /** GPU names from nvidia-smi. */
  gpus?: string[];
}

/** What `cudaStatus` needs from the machine; tests pass fakes. */
export interface CudaProbe {
  nativeDir?: string;
  /** Whether a file exists (default fs.existsSync). */
  exists?: (file: string) => boolean;
  /** `nvidia-smi --query-gpu=driver_version,name --format=csv,noheader` output, or null when it cannot run. */
  queryGpus?: () => string | null;
}

/** The oldest NVIDIA driver branch that runs CUDA 13 (the runtime onnxruntime-gpu 1.30's provider is built for). */
export const MIN_DRIVER_MAJOR = 580;

/** Whether sessions can be created with device "cuda" here, and if not, why. */
export function cudaStatus(probe: CudaProbe = {}): CudaStatus {
  const exists = probe.exists ?? fs.existsSync;
  const dir = probe.nativeDir ?? onnxruntimeNativeDir();
  const missing = CUDA_PROVIDER_FILES.filter((f) => !exists(path.join(dir, f)));
  if (missing.length > 0) {
    return { available: false, reason: `onnxruntime's CUDA provider is not installed (${missing.join(", ")} missing in ${dir}); run \`npm run gpu:install\` (docs/gpu.md)` };
  }
  const out = (probe.queryGpus ?? queryGpus)();
  if (out === null) return { available: false, reason: "no NVIDIA driver: nvidia-smi is missing or failed, so there is no GPU to run on" };
  const rows = out.split("\n").map((l) => l.split(",").map((s) => s.trim())).filter((r) => r[0]);
  if (rows.length === 0) return { available: false, reason: "nvidia-smi lists no GPU" };
  const driver = rows[0][0];
  const gpus = rows.map((r) => r.slice(1).join(",").trim());
  const major = Number(driver.split(".")[0]);
  if (!(major >= MIN_DRIVER_MAJOR)) {
    return { available: false, driver, gpus, reason: `NVIDIA driver ${driver} is too old: the CUDA provider is built for CUDA 13, which needs driver ≥ ${MIN_DRIVER_MAJOR}` };
  }
  return { available: true, driver, gpus };
}

function queryGpus(): string | null {
  try {
    return execFileSync("nvidia-smi", ["--query-gpu=driver_version,name", "--format=csv,noheader"],
      { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return null;
  }
}

let cached: CudaStatus | undefined;

/** Throws GpuUnavailableError unless CUDA can be used (checked once per thread; a GPU does not appear mid-run). */
export function assertCuda(device: ParsedDevice): void {
  cached ??= cudaStatus();
  if (!cached.available) throw new GpuUnavailableError(`device "${deviceName(device)}": ${cached.reason}`);
}
