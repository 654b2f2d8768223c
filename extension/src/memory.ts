/**
 * application/vnd.pixart.memory+json: a plotly timeline of the process's resident memory (anonymous and
 * file-backed pages stacked), each component's weights while it is loaded, GPU memory when probed, and the peak
 * marked; under it the event table and the component table.
 */
import { el, formatBytes } from "./dom";
import type { ComponentMemoryV1, MemoryEventV1, MemoryPayloadV1 } from "./memory-types";
import { plotlyText, themedLayout } from "./plotly";
import { plotInto, type Draw, type Figure } from "./render";

const MiB = 1024 * 1024;
/** Rows of the event table; a longer timeline shows its last ones (the plot has them all). */
export const MAX_TABLE_ROWS = 200;

function total(weights: Record<string, number>): number {
  return Object.values(weights).reduce((a, b) => a + b, 0);
}

/** The highest memory the timeline saw: an event's own RSS or the peak during a run. */
export function peakEvent(timeline: MemoryEventV1[]): { index: number; bytes: number } | undefined {
  let best: { index: number; bytes: number } | undefined;
  timeline.forEach((e, index) => {
    const bytes = Math.max(e.memory.rss, e.peakDuring ?? 0);
    if (!best || bytes > best.bytes) best = { index, bytes };
  });
  return best;
}

/**
 * Each component's weights over the timeline as a step line: its weight bytes from a `load` event of it to the
 * next `delete` of it. Only components whose size the report knows (loaded now) get a line.
 */
export function weightSteps(timeline: MemoryEventV1[], components: ComponentMemoryV1[]): { name: string; x: number[]; y: number[] }[] {
  const lines: { name: string; x: number[]; y: number[] }[] = [];
  for (const c of components) {
    const bytes = total(c.weightBytes);
    if (bytes <= 0) continue;
    let loaded = false;
    const x: number[] = [];
    const y: number[] = [];
    for (const e of timeline) {
      if (e.component !== c.name) continue;
      if (e.kind === "load") loaded = true;
      else if (e.kind === "delete") loaded = false;
      else continue;
      x.push(e.at / 1000);
      y.push(loaded ? bytes / MiB : 0);
    }
    if (x.length === 0 && c.loaded && timeline.length > 0) {
      // Loaded before the timeline began.
      x.push(timeline[0]!.at / 1000);
      y.push(bytes / MiB);
    }
    if (x.length > 0 && timeline.length > 0) {
      x.push(timeline[timeline.length - 1]!.at / 1000);
      y.push(y[y.length - 1]!);
    }
    if (x.length > 0) lines.push({ name: c.name, x, y });
  }
  return lines;
}

export function memoryFigure(host: Element, p: MemoryPayloadV1): Figure {
  const t = p.timeline;
  const x = t.map((e) => e.at / 1000);
  const mib = (v: number) => v / MiB;
  const labels = t.map((e, i) => plotlyText(`${i + 1}. ${e.label}`));
  const data: object[] = [
    { type: "scatter", mode: "lines", name: "RSS anonymous", x, y: t.map((e) => mib(e.memory.rssAnon)), stackgroup: "rss", line: { width: 0.5 }, hovertemplate: "%{y:.1f} MiB anonymous<extra></extra>" },
    { type: "scatter", mode: "lines", name: "RSS file-backed", x, y: t.map((e) => mib(e.memory.rssFile)), stackgroup: "rss", line: { width: 0.5 }, hovertemplate: "%{y:.1f} MiB file-backed<extra></extra>" },
    { type: "scatter", mode: "markers", name: "events", x, y: t.map((e) => mib(e.memory.rss)), text: labels, marker: { size: 6, symbol: "circle" }, hovertemplate: "%{text}<br>RSS %{y:.1f} MiB<extra></extra>" },
  ];
  for (const line of weightSteps(t, p.components)) {
    data.push({ type: "scatter", mode: "lines", name: plotlyText(`${line.name} weights`), x: line.x, y: line.y, line: { shape: "hv", dash: "dot", width: 1.5 }, hovertemplate: "%{y:.2f} MiB<extra></extra>" });
  }
  const gpu = t.flatMap((e) => (e.gpuUsed !== undefined ? [[e.at / 1000, mib(e.gpuUsed)] as const] : []));
  if (gpu.length > 0) data.push({ type: "scatter", mode: "lines+markers", name: "GPU (this process)", x: gpu.map((g) => g[0]), y: gpu.map((g) => g[1]), line: { width: 2 }, hovertemplate: "GPU %{y:.1f} MiB<extra></extra>" });
  const peak = peakEvent(t);
  const layout = themedLayout(host);
  const annotations: object[] = [];
  if (peak) {
    const e = t[peak.index]!;
    data.push({ type: "scatter", mode: "markers", name: "peak", x: [e.at / 1000], y: [mib(peak.bytes)], marker: { size: 14, symbol: "star", color: "#d62728" }, hovertemplate: plotlyText(`peak ${formatBytes(peak.bytes)} (${e.label})`) + "<extra></extra>" });
    annotations.push({ x: e.at / 1000, y: mib(peak.bytes), text: plotlyText(`peak ${formatBytes(peak.bytes)}`), showarrow: true, arrowhead: 2, ax: 0, ay: -28 });
  }
  return {
    data,
    layout: {
      ...layout,
      title: { text: "process memory over the timeline", font: { size: 12 } },
      xaxis: { ...(layout["xaxis"] as object), title: { text: "time (s)" } },
      yaxis: { ...(layout["yaxis"] as object), title: { text: "MiB" }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.25 },
      annotations,
      height: 380,
    },
  };
}

function table(doc: Document, head: string[], rows: string[][], rowClass: (i: number) => string | undefined = () => undefined): HTMLTableElement {
  const tableEl = el(doc, "table", "jp-pixart-table");
  const tr = el(doc, "tr");
  for (const h of head) tr.append(el(doc, "th", undefined, h));
  tableEl.append(el(doc, "thead"), el(doc, "tbody"));
  tableEl.tHead!.append(tr);
  rows.forEach((cells, i) => {
    const r = el(doc, "tr", rowClass(i));
    for (const c of cells) r.append(el(doc, "td", undefined, c));
    tableEl.tBodies[0]!.append(r);
  });
  return tableEl;
}

function summary(p: MemoryPayloadV1): string {
  const m = p.process;
  let s = `RSS ${formatBytes(m.rss)} (anonymous ${formatBytes(m.rssAnon)}, file-backed ${formatBytes(m.rssFile)}), peak ${formatBytes(m.rssPeak)}, JS heap ${formatBytes(m.heapUsed)}`;
  if (p.gpu) s += ` · GPU ${formatBytes(p.gpu.usedBytes)}${p.gpu.scope === "device" ? " (whole device)" : ""}`;
  return s;
}

export const drawMemory: Draw<MemoryPayloadV1> = (host, p, ctx) => {
  const doc = ctx.doc;
  const root = el(doc, "div", "jp-pixart-memory");
  root.append(el(doc, "div", "jp-pixart-title", `Memory: ${summary(p)}`));
  host.append(root);
  const plotDiv = el(doc, "div");
  root.append(plotDiv);
  const plot = p.timeline.length > 0 ? plotInto(plotDiv, ctx, () => memoryFigure(host, p)) : undefined;
  if (!plot) plotDiv.append(el(doc, "div", "jp-pixart-note", "no events recorded yet"));

  const t = p.timeline;
  const peak = peakEvent(t);
  const first = Math.max(0, t.length - MAX_TABLE_ROWS);
  if (first > 0) root.append(el(doc, "div", "jp-pixart-note", `the last ${MAX_TABLE_ROWS} of ${t.length} events (the plot shows all)`));
  const hasGpu = t.some((e) => e.gpuUsed !== undefined);
  const head = ["#", "t (s)", "event", "RSS", "anonymous", "file-backed", "peak during", ...(hasGpu ? ["GPU"] : [])];
  const rows = t.slice(first).map((e, k) => [
    String(first + k + 1),
    (e.at / 1000).toFixed(1),
    e.label,
    formatBytes(e.memory.rss),
    formatBytes(e.memory.rssAnon),
    formatBytes(e.memory.rssFile),
    e.peakDuring !== undefined ? formatBytes(e.peakDuring) : "",
    ...(hasGpu ? [e.gpuUsed !== undefined ? formatBytes(e.gpuUsed) : ""] : []),
  ]);
  if (t.length > 0) {
    const scroll = el(doc, "div", "jp-pixart-scroll");
    scroll.append(table(doc, head, rows, (i) => (peak && first + i === peak.index ? "jp-pixart-peak" : undefined)));
    root.append(scroll);
  }

  const showGpu = p.components.some((c) => c.gpuBytes !== undefined);
  const componentRows = p.components.map((c) => [
    c.name,
    c.loaded ? "yes" : "no",
    c.device ?? "",
    Object.entries(c.weightBytes).map(([dtype, bytes]) => `${formatBytes(bytes)} ${dtype}`).join(" + ") || "-",
    c.loaded ? formatBytes(c.residentWeightBytes) : "-",
    c.activationPeak !== undefined ? formatBytes(c.activationPeak) : "-",
    ...(showGpu ? [c.gpuBytes !== undefined ? formatBytes(c.gpuBytes) : "-"] : []),
  ]);
  if (p.components.length > 0) {
    root.append(table(doc, ["component", "loaded", "device", "weights", "resident (mapped)", "activation peak", ...(showGpu ? ["GPU"] : [])], componentRows));
  }
  return {
    ready: plot?.ready ?? Promise.resolve(),
    resize: () => plot?.resize(),
    dispose: () => plot?.dispose(),
  };
};
