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
  /**
   * Bytes of GPU memory this process holds, over its GPUs (nvidia-smi --query-compute-apps). When nvidia-smi lists
   * no row for this process (a container whose PID namespace differs from the driver's), the memory used on the
   * whole of each GPU instead, and `scope` says so.
   */
  usedBytes: number;
  gpus: { uuid: string; usedBytes: number }[];
  /** "process": this process's rows; "device": whole-GPU figures (other processes included). */
  scope?: "process" | "device";
}

const COMPUTE_APPS_ARGS = ["--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"];
const GPU_USED_ARGS = ["--query-gpu=uuid,memory.used", "--format=csv,noheader,nounits"];

/**
 * This process's GPU memory from `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits`
 * (MiB per row), falling back to `--query-gpu=uuid,memory.used` output when no row is this process's.
 */
export function parseGpuMemory(computeApps: string, pid: number, gpuUsed?: string): GpuProcessMemory {
  const rows = (text: string) => text.split("\n").map((l) => l.split(",").map((c) => c.trim())).filter((r) => r.length >= 2 && r[0] !== "");
  const mib = (v: string) => (/^\d+(\.\d+)?$/.test(v) ? Number(v) * 1024 * 1024 : 0);
  const mine = rows(computeApps).filter((r) => Number(r[0]) === pid).map(([, uuid, used]) => ({ uuid, usedBytes: mib(used ?? "") }));
  if (mine.length > 0 || gpuUsed === undefined) {
    return { usedBytes: mine.reduce((a, g) => a + g.usedBytes, 0), gpus: mine, scope: "process" };
  }
  const all = rows(gpuUsed).map(([uuid, used]) => ({ uuid, usedBytes: mib(used) }));
  return { usedBytes: all.reduce((a, g) => a + g.usedBytes, 0), gpus: all, scope: "device" };
}

function nvidiaSmi(args: string[]): string | null {
  try {
    return require("child_process").execFileSync("nvidia-smi", args, { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return null;
  }
}

function nvidiaSmiAsync(args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    require("child_process").execFile("nvidia-smi", args, { encoding: "utf8", timeout: 5000 }, (err: Error | null, out: string) => resolve(err ? null : out));
  });
}

/** GPU memory of this process from nvidia-smi, or null when there is no NVIDIA driver/tool. */
export function gpuProcessMemory(): GpuProcessMemory | null {
  const apps = nvidiaSmi(COMPUTE_APPS_ARGS);
  if (apps === null) return null;
  const parsed = parseGpuMemory(apps, process.pid);
  return parsed.gpus.length > 0 ? parsed : parseGpuMemory(apps, process.pid, nvidiaSmi(GPU_USED_ARGS) ?? "");
}

/** gpuProcessMemory without blocking the event loop (for sampling while a worker thread runs a stage). */
export async function gpuProcessMemoryAsync(): Promise<GpuProcessMemory | null> {
  const apps = await nvidiaSmiAsync(COMPUTE_APPS_ARGS);
  if (apps === null) return null;
  const parsed = parseGpuMemory(apps, process.pid);
  return parsed.gpus.length > 0 ? parsed : parseGpuMemory(apps, process.pid, (await nvidiaSmiAsync(GPU_USED_ARGS)) ?? "");
}

/**
 * The peak of this process's GPU memory while some work runs, sampled with nvidia-smi (NVML's own sampling is
 * not exposed per process). onnxruntime's CUDA arena only grows during a session's life, so the peak is also
 * where the memory stands when a stage ends; sampling catches growth in between (e.g. the transient fp32 cast of a
 * weight). `intervalMs` trades accuracy for nvidia-smi processes (each ~20–50 ms of CPU).
 */
export class GpuPeakSampler {
  private peak = 0;
  private samples = 0;
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;

  constructor(private readonly probe: () => Promise<GpuProcessMemory | null> = gpuProcessMemoryAsync, private readonly intervalMs = 200) {}

  start(): this {
    const tick = () => {
      if (this.inFlight) return;
      this.inFlight = this.probe().then((m) => {
        if (m) {
          this.samples++;
          this.peak = Math.max(this.peak, m.usedBytes);
        }
      }).finally(() => (this.inFlight = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Stops sampling after one last sample; undefined when no sample could be taken (no driver). */
  async stop(): Promise<{ peak: number; samples: number } | undefined> {
    clearInterval(this.timer);
    await this.inFlight;
    const last = await this.probe();
    if (last) {
      this.samples++;
      this.peak = Math.max(this.peak, last.usedBytes);
    }
    return this.samples > 0 ? { peak: this.peak, samples: this.samples } : undefined;
  }
}
