/**
 * Where the memory went: a timeline of lifecycle events (load, run, delete, flush) with process memory at
 * each, and a report per component (weights by dtype, resident file-backed bytes, activation peak).
 */
import type { DType } from "../io/types";
import { memoryChartPng } from "./chart";
import { formatBytes, gpuProcessMemory, mappedResidency, processMemory, type GpuProcessMemory, type ProcessMemory } from "./probes";

/** Version of the memory payload's schema; bump it with the schema when a field changes meaning or goes away. */
export const MEMORY_PAYLOAD_VERSION = 1;

export type MemoryEventKind = "load" | "run" | "delete" | "flush" | "mark";

export interface MemoryEvent {
  /** Milliseconds since the timeline started. */
  at: number;
  kind: MemoryEventKind;
  /** What happened, e.g. "load transformer", "denoise (20 steps)". */
  label: string;
  component?: string;
  memory: ProcessMemory;
  /** For runs: the process peak RSS while the run was going on. */
  peakDuring?: number;
  durationMs?: number;
  /** GPU memory of this process at the event (nvidia-smi), once a component has been on a GPU. */
  gpuUsed?: number;
  /** For runs on a GPU: this process's peak GPU memory while the run was going on (sampled). */
  gpuPeakDuring?: number;
}

/**
 * The last `MemoryTimeline.MAX_EVENTS` events; older ones are dropped, so a pipeline kept open for thousands of
 * load/run/delete cycles does not grow the process (about 11 events, 4 KB of heap, per load → call → delete → flush
 * cycle: 1,000 cycles kept everything would be 2–3 % of a small pipeline's RSS).
 */
export class MemoryTimeline {
  static readonly MAX_EVENTS = 500;
  readonly events: MemoryEvent[] = [];
  private readonly start = Date.now();

  record(kind: MemoryEventKind, label: string, extra: Partial<Pick<MemoryEvent, "component" | "peakDuring" | "durationMs" | "gpuUsed" | "gpuPeakDuring">> = {}): MemoryEvent {
    const event: MemoryEvent = { at: Date.now() - this.start, kind, label, memory: processMemory(), ...extra };
    this.events.push(event);
    if (this.events.length > MemoryTimeline.MAX_EVENTS) this.events.splice(0, this.events.length - MemoryTimeline.MAX_EVENTS);
    return event;
  }
}

export interface ComponentMemory {
  name: string;
  loaded: boolean;
  /** Checkpoint bytes the component's graph maps, by stored dtype. */
  weightBytes: Partial<Record<DType, number>>;
  /** Of those, bytes resident now (file-backed pages: reclaimable, shared with the page cache). */
  residentWeightBytes: number;
  /** Peak RSS growth during the component's last run (activations and workspace). */
  activationPeak?: number;
  /** Where the component runs: "cpu", "cuda" or "cuda:N" (absent when not loaded). */
  device?: string;
  /** GPU memory the component took when it was put on the GPU (weights, CUDA workspace): nvidia-smi before/after. */
  gpuBytes?: number;
  /** Peak GPU memory growth during the component's last run (activations; onnxruntime's CUDA arena). */
  gpuActivationPeak?: number;
}

/** What a loaded component tells the report. */
export interface ComponentMemorySource {
  name: string;
  weightBytes?: Partial<Record<DType, number>>;
  weightFiles?: readonly string[];
  activationPeak?: number;
  device?: string;
  gpuBytes?: number;
  gpuActivationPeak?: number;
}

export interface MemoryReportOptions {
  /** Probe this process's GPU memory with nvidia-smi (null in the report when there is no driver). */
  gpu?: boolean;
  /** A GPU reading taken already (instead of probing). */
  gpuMemory?: GpuProcessMemory | null;
}

export class MemoryReport {
  readonly process: ProcessMemory;
  readonly gpu: GpuProcessMemory | null;

  constructor(readonly components: ComponentMemory[], readonly timeline: readonly MemoryEvent[], options: MemoryReportOptions = {}) {
    this.process = processMemory();
    this.gpu = options.gpuMemory !== undefined ? options.gpuMemory : options.gpu ? gpuProcessMemory() : null;
  }

  static collect(sources: readonly (ComponentMemorySource & { loaded: boolean })[], timeline: readonly MemoryEvent[], options: MemoryReportOptions = {}): MemoryReport {
    const files = sources.flatMap((s) => s.weightFiles ?? []);
    const resident = mappedResidency(files);
    const components = sources.map((s) => ({
      name: s.name,
      loaded: s.loaded,
      weightBytes: s.weightBytes ?? {},
      residentWeightBytes: (s.weightFiles ?? []).reduce((a, f) => a + (resident.get(f) ?? 0), 0),
      ...(s.activationPeak === undefined ? {} : { activationPeak: s.activationPeak }),
      ...(s.device === undefined ? {} : { device: s.device }),
      ...(s.gpuBytes === undefined ? {} : { gpuBytes: s.gpuBytes }),
      ...(s.gpuActivationPeak === undefined ? {} : { gpuActivationPeak: s.gpuActivationPeak }),
    }));
    return new MemoryReport(components, [...timeline], options);
  }

  /** The application/vnd.pixart.memory+json payload (src/display/schemas/memory.schema.json). */
  toJSON(): Record<string, unknown> {
    return { version: MEMORY_PAYLOAD_VERSION, process: this.process, gpu: this.gpu, components: this.components, timeline: this.timeline };
  }

  toString(): string {
    // GPU columns only once something has been on a GPU, so CPU reports read as before.
    const onGpu = this.components.some((c) => c.gpuBytes !== undefined || (c.device ?? "cpu") !== "cpu") || this.timeline.some((e) => e.gpuUsed !== undefined);
    const bytesOrDash = (n: number | undefined) => (n === undefined ? "-" : formatBytes(n));
    const rows = [["component", "loaded", "weights", "resident (mapped)", "activation peak", ...(onGpu ? ["device", "GPU (at load)", "GPU activation peak"] : [])]];
    for (const c of this.components) {
      const weights = Object.entries(c.weightBytes).map(([d, b]) => `${formatBytes(b ?? 0)} ${d}`).join(" + ") || "-";
      rows.push([c.name, c.loaded ? "yes" : "no", weights, c.loaded ? formatBytes(c.residentWeightBytes) : "-", bytesOrDash(c.activationPeak),
        ...(onGpu ? [c.device ?? "-", bytesOrDash(c.gpuBytes), bytesOrDash(c.gpuActivationPeak)] : [])]);
    }
    const p = this.process;
    const lines = [table(rows), "", `process: RSS ${formatBytes(p.rss)} (anon ${formatBytes(p.rssAnon)}, file ${formatBytes(p.rssFile)}), ` +
      `peak ${formatBytes(p.rssPeak)}, JS heap ${formatBytes(p.heapUsed)}, buffers ${formatBytes(p.arrayBuffers)}`];
    if (this.gpu) {
      lines.push(this.gpu.scope === "device"
        ? `GPU: ${formatBytes(this.gpu.usedBytes)} used on the GPU (nvidia-smi shows no row for this process; other processes included)`
        : `GPU: ${formatBytes(this.gpu.usedBytes)} held by this process`);
    }
    if (this.timeline.length > 0) {
      const events = [["t (s)", "event", "RSS", "anon", "file", "peak during", ...(onGpu ? ["GPU", "GPU peak during"] : [])]];
      for (const e of this.timeline) {
        events.push([(e.at / 1000).toFixed(1), e.label, formatBytes(e.memory.rss), formatBytes(e.memory.rssAnon), formatBytes(e.memory.rssFile),
          e.peakDuring === undefined ? "" : formatBytes(e.peakDuring),
          ...(onGpu ? [e.gpuUsed === undefined ? "" : formatBytes(e.gpuUsed), e.gpuPeakDuring === undefined ? "" : formatBytes(e.gpuPeakDuring)] : [])]);
      }
      lines.push("", table(events));
    }
    return lines.join("\n");
  }

  /** The timeline and per-component chart as a PNG. */
  toPng(): Buffer {
    const p = this.process;
    const footer = `now: RSS ${formatBytes(p.rss)} (anon ${formatBytes(p.rssAnon)}, file ${formatBytes(p.rssFile)}), peak ${formatBytes(p.rssPeak)}` +
      (this.gpu ? `, GPU ${formatBytes(this.gpu.usedBytes)}` : "");
    return memoryChartPng(this.components, this.timeline, footer);
  }

  /** Notebook display: the custom MIME type the JupyterLab extension renders, a chart PNG and a text table. */
  [Symbol.for("Jupyter.display")](): Record<string, unknown> {
    return { "application/vnd.pixart.memory+json": this.toJSON(), "image/png": this.toPng().toString("base64"), "text/plain": this.toString() };
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(rows[0]), widths.map((w) => "─".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}
