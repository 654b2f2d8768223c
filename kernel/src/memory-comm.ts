/**
 * The comm target `pixart.memory`: the JupyterLab memory panel opens it to follow the kernel's memory live.
 *
 * While the comm is open the kernel sends a snapshot (process RSS anonymous / file-backed, GPU memory when there is
 * an NVIDIA driver, per pipeline its components and last lifecycle events) every `interval_ms` from a main-thread
 * timer. Pipelines run their models in worker threads and await them, so the timer fires while a cell runs a
 * pipeline; only synchronous cell code (a loop that never awaits) holds the snapshots back until it ends.
 *
 * The panel's requests (`flush`, `delete`, `snapshot`, `interval`) arrive as comm_msg on the shell channel and so
 * wait for a running cell to finish, like every shell request; each is answered by a `reply` and a fresh snapshot.
 * The protocol is in docs/kernel.md (Memory panel comm).
 */
import type { Comm, CommMessage } from "../../src/display/display";
import { gpuProcessMemoryAsync, processMemory, type GpuProcessMemory } from "../../src/memory/probes";
import { liveMemoryHosts } from "../../src/runtime/memory-hosts";
import { nvidiaSmiPresent } from "./usage";

export const memoryCommTarget = "pixart.memory";
/** Version of the snapshot message; bump it when a field changes meaning or goes away. */
export const MEMORY_COMM_VERSION = 1;

export const defaultIntervalMs = 1000;
const minIntervalMs = 100;
const maxIntervalMs = 60000;
/** Lifecycle events per pipeline in a snapshot (the newest). */
const eventsPerPipeline = 8;

export interface MemoryCommOptions {
  /** Whether a cell is running now (the panel disables its buttons, whose requests would wait). */
  busy: () => boolean;
}

type Request =
  | { request: "snapshot" }
  | { request: "flush"; pipeline?: number }
  | { request: "delete"; pipeline: number; component: string }
  | { request: "interval"; ms: number };

/** A typed reason for a refused request; its message is what the panel shows. */
export class MemoryRequestError extends Error {
  override name = "MemoryRequestError";
}

function parseRequest(data: unknown): Request {
  if (data === null || typeof data !== "object") throw new MemoryRequestError(`expected an object with a "request" field, got ${typeof data}`);
  const d = data as Record<string, unknown>;
  switch (d["request"]) {
    case "snapshot":
      return { request: "snapshot" };
    case "flush":
      if (d["pipeline"] !== undefined && !Number.isInteger(d["pipeline"])) throw new MemoryRequestError(`flush: "pipeline" must be an integer id`);
      return d["pipeline"] === undefined ? { request: "flush" } : { request: "flush", pipeline: d["pipeline"] as number };
    case "delete":
      if (!Number.isInteger(d["pipeline"])) throw new MemoryRequestError(`delete: "pipeline" must be an integer id`);
      if (typeof d["component"] !== "string") throw new MemoryRequestError(`delete: "component" must be a string`);
      return { request: "delete", pipeline: d["pipeline"] as number, component: d["component"] };
    case "interval":
      return { request: "interval", ms: intervalFrom(d["ms"]) };
    default:
      throw new MemoryRequestError(`unknown request ${JSON.stringify(d["request"])}; expected "snapshot", "flush", "delete" or "interval"`);
  }
}

function intervalFrom(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new MemoryRequestError(`interval: "ms" must be a number of milliseconds`);
  return Math.min(maxIntervalMs, Math.max(minIntervalMs, Math.round(value)));
}

/** The GPU reading, refreshed in the background (nvidia-smi takes tens of ms; the timer never waits for it). */
class GpuReading {
  private latest: GpuProcessMemory | null = null;
  private inFlight = false;

  refresh(): GpuProcessMemory | null {
    if (!this.inFlight && nvidiaSmiPresent()) {
      this.inFlight = true;
      void gpuProcessMemoryAsync().then((m) => (this.latest = m)).finally(() => (this.inFlight = false));
    }
    return this.latest;
  }
}

/** One open panel comm: its timer and its request handler. */
class MemoryFeed {
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private readonly gpu = new GpuReading();

  constructor(
    private readonly comm: Comm,
    private readonly options: MemoryCommOptions,
    private intervalMs: number,
  ) {
    comm.onMsg((msg) => this.onRequest(msg));
    comm.onClose(() => this.stop());
  }

  start(): void {
    this.send();
    this.schedule();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.send(), this.intervalMs);
    this.timer.unref(); // an open panel never keeps the kernel process alive
  }

  private send(): void {
    if (this.comm.closed) {
      this.stop();
      return;
    }
    this.comm.send(this.snapshot());
  }

  snapshot(): Record<string, unknown> {
    const pipelines = liveMemoryHosts().map(({ id, host }) => {
      const { components, events } = host.memorySnapshot();
      return { id, label: host.memoryLabel, components, events: events.slice(-eventsPerPipeline), eventCount: events.length };
    });
    return {
      type: "snapshot", version: MEMORY_COMM_VERSION, seq: ++this.seq, at: Date.now(), busy: this.options.busy(), intervalMs: this.intervalMs,
      process: processMemory(), gpu: this.gpu.refresh(), pipelines,
    };
  }

  private async onRequest(msg: CommMessage): Promise<void> {
    let request: Request | undefined;
    try {
      request = parseRequest(msg.data);
      await this.perform(request);
      this.comm.send({ type: "reply", request: request.request, ok: true });
    } catch (e) {
      const error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      this.comm.send({ type: "reply", request: request?.request ?? null, ok: false, error });
    }
    this.send();
  }

  private async perform(request: Request): Promise<void> {
    switch (request.request) {
      case "snapshot":
        return;
      case "interval":
        this.intervalMs = request.ms;
        this.schedule();
        return;
      case "delete":
        hostById(request.pipeline).unload(request.component);
        return;
      case "flush": {
        const hosts = request.pipeline === undefined ? liveMemoryHosts().map((h) => h.host) : [hostById(request.pipeline)];
        for (const host of hosts) await host.flush();
        // With no pipeline (or besides them), the collection is what a flush means: garbage the cells left.
        const gc = (globalThis as { gc?: () => void }).gc;
        if (hosts.length === 0 && gc) gc();
        return;
      }
    }
  }
}

function hostById(id: number): ReturnType<typeof liveMemoryHosts>[number]["host"] {
  const found = liveMemoryHosts().find((h) => h.id === id);
  if (!found) throw new MemoryRequestError(`no pipeline ${id} in this kernel (it was garbage-collected, or the kernel restarted)`);
  return found.host;
}

/** The handler for registerTarget: the open message may carry `{ interval_ms }`. */
export function memoryCommHandler(options: MemoryCommOptions): (comm: Comm, open: CommMessage) => void {
  return (comm, open) => {
    const data = (open.data ?? {}) as Record<string, unknown>;
    let interval = defaultIntervalMs;
    try {
      if (data["interval_ms"] !== undefined) interval = intervalFrom(data["interval_ms"]);
    } catch (e) {
      comm.close({ error: (e as Error).message });
      return;
    }
    new MemoryFeed(comm, options, interval).start();
  };
}
