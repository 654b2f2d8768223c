/**
 * Process memory as the kernel reports it (/proc/self/status), split into file-backed pages (memory-mapped
 * weights, reclaimable page cache) and anonymous pages (copies, activations, the JS heap).
 */
import * as fs from "fs";

export interface ProcessMemory {
  /** Resident set size, bytes. */
  rss: number;
  /** High-water mark of the resident set since the process started, bytes. */
  rssPeak: number;
  rssAnon: number;
  rssFile: number;
  /** V8 heap in use, bytes (part of rssAnon). */
  heapUsed: number;
  /** ArrayBuffers outside the V8 heap (tensors), bytes. */
  arrayBuffers: number;
}

const FIELDS: Record<string, keyof ProcessMemory> = { VmRSS: "rss", VmHWM: "rssPeak", RssAnon: "rssAnon", RssFile: "rssFile" };

export function processMemory(): ProcessMemory {
  const mem: ProcessMemory = { rss: 0, rssPeak: 0, rssAnon: 0, rssFile: 0, heapUsed: 0, arrayBuffers: 0 };
  let status = "";
  try {
    status = fs.readFileSync("/proc/self/status", "utf8");
  } catch {
    // Not Linux: fall back to what node knows.
  }
  for (const line of status.split("\n")) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    const key = m && FIELDS[m[1]];
    if (key) mem[key] = Number(m[2]) * 1024;
  }
  const usage = process.memoryUsage();
  if (!status) mem.rss = usage.rss;
  mem.heapUsed = usage.heapUsed;
  mem.arrayBuffers = usage.arrayBuffers;
  return mem;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/**
 * Starts a new high-water mark: afterwards `processMemory().rssPeak` is the peak since this call
 * (Linux: writing 5 to /proc/self/clear_refs resets VmHWM). Returns false where that is not possible.
 */
export function resetPeak(): boolean {
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** Resident bytes of the memory mappings of each file (e.g. a model's safetensors), from /proc/self/smaps. */
export function mappedResidency(files: Iterable<string>): Map<string, number> {
  const wanted = new Set(files);
  const resident = new Map<string, number>([...wanted].map((f) => [f, 0]));
  let smaps: string;
  try {
    smaps = fs.readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return resident;
  }
  let current: string | undefined;
  for (const line of smaps.split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s+(.*)$/.exec(line);
    if (header) {
      current = wanted.has(header[1]) ? header[1] : undefined;
      continue;
    }
    if (current && line.startsWith("Rss:")) resident.set(current, resident.get(current)! + Number(line.split(/\s+/)[1]) * 1024);
  }
  return resident;
}

export interface GpuProcessMemory {
  /** Bytes of GPU memory this process holds, per GPU (nvidia-smi --query-compute-apps). */
  usedBytes: number;
  gpus: { uuid: string; usedBytes: number }[];
}

/** GPU memory of this process from nvidia-smi, or null when there is no NVIDIA driver/tool. */
export function gpuProcessMemory(): GpuProcessMemory | null {
  let out: string;
  try {
    out = require("child_process").execFileSync("nvidia-smi", ["--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"],
      { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return null;
  }
  const gpus = out.split("\n").map((l) => l.split(",").map((s) => s.trim())).filter((p) => Number(p[0]) === process.pid)
    .map(([, uuid, mib]) => ({ uuid, usedBytes: Number(mib) * 1024 * 1024 }));
  return { usedBytes: gpus.reduce((a, g) => a + g.usedBytes, 0), gpus };
}
