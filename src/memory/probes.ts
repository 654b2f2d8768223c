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
