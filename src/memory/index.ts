/** Process memory probes and the per-component memory report of a pipeline. */
export { MemoryReport, MemoryTimeline } from "./report";
export type { ComponentMemory, ComponentMemorySource, MemoryEvent, MemoryEventKind, MemoryReportOptions } from "./report";
export { GpuPeakSampler, processMemory, formatBytes, gpuProcessMemory } from "./probes";
export type { ProcessMemory, GpuProcessMemory } from "./probes";
