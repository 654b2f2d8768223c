/**
 * The reply to jupyter-resource-usage's `usage_request` (sent on the control channel; the server extension passes
 * the reply's content to JupyterLab's kernel usage panel). Fields as ipykernel fills them: hostname, pid,
 * kernel_cpu (% of one core), kernel_memory (bytes), cpu_count, host_cpu_percent, host_virtual_memory (bytes, with
 * percent); plus kernel_memory_detail and gpu_memory, which that panel ignores and other clients may read.
 */
import * as fs from "fs";
import * as os from "os";
import { gpuProcessMemory, processMemory } from "../../src/memory/probes";

interface CpuSample {
  at: bigint;
  process: NodeJS.CpuUsage;
  host: { idle: number; total: number };
}

function hostCpu(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** /proc/meminfo fields in bytes (empty off Linux). */
function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of fs.readFileSync("/proc/meminfo", "utf8").split("\n")) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m) out[m[1]] = Number(m[2]) * 1024;
    }
  } catch {
    // not Linux
  }
  return out;
}

function hostVirtualMemory(): Record<string, number> {
  const info = meminfo();
  const total = os.totalmem();
  const free = os.freemem();
  const available = info["MemAvailable"] ?? free;
  const used = total - available;
  return {
    total, available, free, used,
    percent: total > 0 ? (100 * used) / total : 0,
    active: info["Active"] ?? 0,
    inactive: info["Inactive"] ?? 0,
    buffers: info["Buffers"] ?? 0,
    cached: info["Cached"] ?? 0,
    shared: info["Shmem"] ?? 0,
  };
}

let hasNvidiaSmi: boolean | undefined;

/** nvidia-smi on PATH (looked up once): spawning it on a machine without a GPU would cost a failed exec per poll. */
export function nvidiaSmiPresent(): boolean {
  hasNvidiaSmi ??= (process.env["PATH"] ?? "").split(":").some((dir) => dir && fs.existsSync(`${dir}/nvidia-smi`));
  return hasNvidiaSmi;
}

/** Answers usage requests; CPU percentages are over the time since the previous request (or since start-up). */
export class UsageReporter {
  private last: CpuSample = { at: process.hrtime.bigint(), process: process.cpuUsage(), host: hostCpu() };

  reply(): Record<string, unknown> {
    const now: CpuSample = { at: process.hrtime.bigint(), process: process.cpuUsage(), host: hostCpu() };
    const wallUs = Number(now.at - this.last.at) / 1000;
    const cpuUs = now.process.user - this.last.process.user + now.process.system - this.last.process.system;
    const hostTotal = now.host.total - this.last.host.total;
    const hostIdle = now.host.idle - this.last.host.idle;
    this.last = now;
    const mem = processMemory();
    const content: Record<string, unknown> = {
      hostname: os.hostname(),
      pid: process.pid,
      kernel_cpu: wallUs > 0 ? (100 * cpuUs) / wallUs : 0,
      kernel_memory: mem.rss,
      kernel_memory_detail: mem,
      cpu_count: os.cpus().length,
      host_virtual_memory: hostVirtualMemory(),
    };
    if (hostTotal > 0) content["host_cpu_percent"] = (100 * (hostTotal - hostIdle)) / hostTotal;
    const gpu = nvidiaSmiPresent() ? gpuProcessMemory() : null;
    if (gpu) content["gpu_memory"] = gpu;
    return content;
  }
}
