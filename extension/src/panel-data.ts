/**
 * The memory panel's view of a `pixart.memory` snapshot (docs/kernel.md, version 1), checked field by field: numbers
 * must be finite, strings strings; anything else is dropped or replaced, so the panel never draws from a value of a
 * type it did not expect. A snapshot of a newer version gives a message instead.
 */

export const SNAPSHOT_VERSION = 1;

export interface PanelComponent {
  name: string;
  loaded: boolean;
  weightBytes: Record<string, number>;
  residentWeightBytes: number;
  device?: string;
}

export interface PanelEvent {
  at: number;
  kind: string;
  label: string;
  rss: number;
}

export interface PanelPipeline {
  id: number;
  label: string;
  components: PanelComponent[];
  events: PanelEvent[];
  eventCount: number;
}

export interface PanelSnapshot {
  seq: number;
  at: number;
  busy: boolean;
  process: { rss: number; rssAnon: number; rssFile: number; rssPeak: number; heapUsed: number; arrayBuffers: number };
  gpu: { usedBytes: number; scope: string } | null;
  pipelines: PanelPipeline[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const num = (v: unknown, fallback = 0): number => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : fallback);
const str = (v: unknown, fallback = ""): string => (typeof v === "string" ? v.slice(0, 200) : fallback);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v.slice(0, 64) : []);

function component(v: unknown): PanelComponent | undefined {
  if (!isObj(v) || typeof v["name"] !== "string") return undefined;
  const weights: Record<string, number> = {};
  if (isObj(v["weightBytes"])) for (const [k, b] of Object.entries(v["weightBytes"])) weights[k.slice(0, 16)] = num(b);
  const c: PanelComponent = { name: str(v["name"]), loaded: v["loaded"] === true, weightBytes: weights, residentWeightBytes: num(v["residentWeightBytes"]) };
  if (typeof v["device"] === "string") c.device = str(v["device"]);
  return c;
}

function event(v: unknown): PanelEvent | undefined {
  if (!isObj(v)) return undefined;
  const memory = isObj(v["memory"]) ? v["memory"] : {};
  return { at: num(v["at"]), kind: str(v["kind"]), label: str(v["label"]), rss: num(memory["rss"]) };
}

function pipeline(v: unknown): PanelPipeline | undefined {
  if (!isObj(v) || !Number.isInteger(v["id"])) return undefined;
  const events = list(v["events"]).map(event).filter((e): e is PanelEvent => e !== undefined);
  return {
    id: v["id"] as number,
    label: str(v["label"], "pipeline"),
    components: list(v["components"]).map(component).filter((c): c is PanelComponent => c !== undefined),
    events,
    eventCount: Math.max(events.length, num(v["eventCount"])),
  };
}

/** The snapshot, or a message saying why it cannot be shown. */
export function parseSnapshot(data: unknown): PanelSnapshot | string {
  if (!isObj(data) || data["type"] !== "snapshot") return "The kernel sent a message the panel does not understand.";
  if (data["version"] !== SNAPSHOT_VERSION) {
    return `The kernel speaks version ${String(data["version"]).slice(0, 20)} of the memory panel protocol; this extension knows version ` +
      `${SNAPSHOT_VERSION}. Update the JupyterLab extension to see it.`;
  }
  const p = isObj(data["process"]) ? data["process"] : {};
  const gpu = isObj(data["gpu"]) ? { usedBytes: num(data["gpu"]["usedBytes"]), scope: str(data["gpu"]["scope"], "process") } : null;
  return {
    seq: num(data["seq"]),
    at: num(data["at"], Date.now()),
    busy: data["busy"] === true,
    process: {
      rss: num(p["rss"]), rssAnon: num(p["rssAnon"]), rssFile: num(p["rssFile"]), rssPeak: num(p["rssPeak"]),
      heapUsed: num(p["heapUsed"]), arrayBuffers: num(p["arrayBuffers"]),
    },
    gpu,
    pipelines: list(data["pipelines"]).map(pipeline).filter((x): x is PanelPipeline => x !== undefined),
  };
}
