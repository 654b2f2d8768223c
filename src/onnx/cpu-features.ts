/**
 * The x64 CPU features that decide onnxruntime session options, read once from /proc/cpuinfo (Linux). Where
 * they cannot be read (another OS), the answer is the conservative one.
 */
import * as fs from "fs";

/**
 * Whether int8 sessions need onnxruntime's `session.x64quantprecision = "1"`. Without VNNI (SSE4.1, AVX2,
 * AVX-512 without VNNI), MLAS's u8×s8 kernels add pairs of products in int16 with saturation, so int8 matmuls can
 * be far off; the option makes them convert the int8 weights and run the exact u8×u8 kernel. With AVX512-VNNI or
 * AVX-VNNI the u8×s8 kernel accumulates in int32 (vpdpbusd, exact) and the option only costs speed: 2.2–2.3× the
 * CPU time of the u8×s8 kernel at the transformer's Linear shapes (bench/gemm-formulations.ts, docs/benchmarks.md).
 * Not x64: the option does nothing, so it is not set.
 */
export function needsX64QuantPrecision(): boolean {
  return x64QuantPrecisionNeeded(readCpuinfo(), process.arch);
}

/** The decision for the given /proc/cpuinfo text (undefined: unreadable) and `process.arch`. */
export function x64QuantPrecisionNeeded(cpuinfo: string | undefined, arch: string): boolean {
  if (arch !== "x64") return false;
  if (cpuinfo === undefined) return true;
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].trim().split(/\s+/) ?? []);
  return !(flags.has("avx512_vnni") || flags.has("avx_vnni"));
}

let cached: string | undefined | null = null;

function readCpuinfo(): string | undefined {
  if (cached === null) {
    try {
      cached = process.platform === "linux" ? fs.readFileSync("/proc/cpuinfo", "utf8") : undefined;
    } catch {
      cached = undefined;
    }
  }
  return cached;
}
