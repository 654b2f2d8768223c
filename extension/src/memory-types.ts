/**
 * application/vnd.pixart.memory+json, version 1, as src/display/schemas/memory.schema.json defines it (the library's
 * MemoryReport.toJSON writes it). Kept here rather than imported from src/memory, whose module graph pulls in the
 * Node-only probes and canvas chart; the schema check in payload.ts is what guarantees this shape.
 */
export interface ProcessMemoryV1 {
  rss: number;
  rssPeak: number;
  rssAnon: number;
  rssFile: number;
  heapUsed: number;
  arrayBuffers: number;
}

export interface MemoryEventV1 {
  at: number;
  kind: "load" | "run" | "delete" | "flush" | "mark";
  label: string;
  component?: string;
  memory: ProcessMemoryV1;
  peakDuring?: number;
  durationMs?: number;
  gpuUsed?: number;
  gpuPeakDuring?: number;
}

export interface ComponentMemoryV1 {
  name: string;
  loaded: boolean;
  weightBytes: Record<string, number>;
  residentWeightBytes: number;
  activationPeak?: number;
  device?: string;
  gpuBytes?: number;
  gpuActivationPeak?: number;
}

export interface MemoryPayloadV1 {
  version: 1;
  process: ProcessMemoryV1;
  gpu?: null | { usedBytes: number; scope?: "process" | "device"; gpus?: { usedBytes: number }[] };
  components: ComponentMemoryV1[];
  timeline: MemoryEventV1[];
}
