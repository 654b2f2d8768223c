/**
 * The memory report as a picture (the PNG fallback of its notebook bundle, drawn with canvas): the timeline of
 * process memory (anonymous and file-backed RSS stacked, each run's peak as a band over its duration, numbered
 * events) above one bar per component (its weights, and how much of them is resident now).
 */
import { createCanvas, type CanvasRenderingContext2D } from "canvas";
import { formatBytes } from "./probes";
import type { ComponentMemory, MemoryEvent } from "./report";

const W = 720;
const PAD = { left: 64, right: 16, top: 24 };
const PLOT_H = 200;
const COLORS = { gpu: "#f58518", anon: "#4c78a8", file: "#9ecae9", peak: "rgba(228, 87, 86, 0.25)", peakLine: "#e45756", text: "#222222", grid: "#e6e6e6", weights: "#bab0ac", resident: "#54a24b" };

function niceStep(max: number): number {
  const raw = max / 4;
  const mag = 2 ** Math.floor(Math.log2(raw || 1));
  for (const m of [1, 2, 4, 8]) if (mag * m >= raw) return mag * m;
  return mag * 8;
}

function axis(ctx: CanvasRenderingContext2D, maxBytes: number, y0: number, h: number): number {
  const step = niceStep(maxBytes);
  const top = Math.ceil(maxBytes / step) * step || 1;
  ctx.font = "10px sans-serif";
  for (let v = 0; v <= top + 1; v += step) {
    const y = y0 + h - (v / top) * h;
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    ctx.moveTo(PAD.left, y);
    ctx.lineTo(W - PAD.right, y);
    ctx.stroke();
    ctx.fillStyle = COLORS.text;
    ctx.fillText(formatBytes(v), 4, y + 3);
  }
  return top;
}

function drawTimeline(ctx: CanvasRenderingContext2D, events: readonly MemoryEvent[], y0: number): void {
  const tEnd = Math.max(1, ...events.map((e) => e.at));
  const maxBytes = Math.max(1, ...events.map((e) => Math.max(e.memory.rss, e.memory.rssAnon + e.memory.rssFile, e.peakDuring ?? 0, e.gpuUsed ?? 0, e.gpuPeakDuring ?? 0)));
  const top = axis(ctx, maxBytes, y0, PLOT_H);
  const plotW = W - PAD.left - PAD.right;
  const x = (t: number) => PAD.left + (Math.max(0, t) / tEnd) * plotW;
  const y = (b: number) => y0 + PLOT_H - (b / top) * PLOT_H;
  for (const e of events) {
    if (e.peakDuring === undefined) continue;
    const x1 = x(e.at - (e.durationMs ?? 0));
    const x2 = Math.max(x(e.at), x1 + 2);
    ctx.fillStyle = COLORS.peak;
    ctx.fillRect(x1, y(e.peakDuring), x2 - x1, y(0) - y(e.peakDuring));
    ctx.strokeStyle = COLORS.peakLine;
    ctx.beginPath();
    ctx.moveTo(x1, y(e.peakDuring));
    ctx.lineTo(x2, y(e.peakDuring));
    ctx.stroke();
  }
  // Memory holds between events: a step function, file-backed stacked on anonymous.
  events.forEach((e, i) => {
    const x1 = x(e.at);
    const x2 = i + 1 < events.length ? x(events[i + 1].at) : x1 + 4;
    const w = Math.max(1, x2 - x1);
    ctx.fillStyle = COLORS.anon;
    ctx.fillRect(x1, y(e.memory.rssAnon), w, y(0) - y(e.memory.rssAnon));
    ctx.fillStyle = COLORS.file;
    ctx.fillRect(x1, y(e.memory.rssAnon + e.memory.rssFile), w, y(e.memory.rssAnon) - y(e.memory.rssAnon + e.memory.rssFile));
  });
  drawGpu(ctx, events, x, y);
  ctx.font = "9px sans-serif";
  ctx.fillStyle = COLORS.text;
  events.forEach((e, i) => ctx.fillText(String(i + 1), x(e.at) + 1, Math.max(y0 + 9, y(e.memory.rss) - 3)));
  ctx.font = "10px sans-serif";
  ctx.fillText("0 s", PAD.left, y0 + PLOT_H + 12);
  const endLabel = `${(tEnd / 1000).toFixed(1)} s`;
  ctx.fillText(endLabel, W - PAD.right - ctx.measureText(endLabel).width, y0 + PLOT_H + 12);
}

/** GPU memory of the process (once a component was on a GPU): a step line, and each run's sampled peak as a tick. */
function drawGpu(ctx: CanvasRenderingContext2D, events: readonly MemoryEvent[], x: (t: number) => number, y: (b: number) => number): void {
  const gpu = events.filter((e) => e.gpuUsed !== undefined);
  if (gpu.length === 0) return;
  ctx.strokeStyle = COLORS.gpu;
  ctx.lineWidth = 2;
  ctx.beginPath();
  gpu.forEach((e, i) => {
    const x2 = i + 1 < gpu.length ? x(gpu[i + 1].at) : x(e.at) + 4;
    if (i === 0) ctx.moveTo(x(e.at), y(e.gpuUsed!));
    else ctx.lineTo(x(e.at), y(e.gpuUsed!));
    ctx.lineTo(x2, y(e.gpuUsed!));
  });
  ctx.stroke();
  for (const e of events) {
    if (e.gpuPeakDuring === undefined) continue;
    ctx.beginPath();
    ctx.moveTo(x(e.at - (e.durationMs ?? 0)), y(e.gpuPeakDuring));
    ctx.lineTo(Math.max(x(e.at), x(e.at - (e.durationMs ?? 0)) + 2), y(e.gpuPeakDuring));
    ctx.stroke();
  }
  ctx.lineWidth = 1;
}

function legend(ctx: CanvasRenderingContext2D, y: number, gpu = false): void {
  const items: [string, string][] = [[COLORS.anon, "RSS anonymous"], [COLORS.file, "RSS file-backed (mapped weights)"], [COLORS.peak, "peak during a run"],
    ...(gpu ? [[COLORS.gpu, "GPU (this process)"] as [string, string]] : [])];
  let x = PAD.left;
  ctx.font = "10px sans-serif";
  for (const [color, label] of items) {
    ctx.fillStyle = color;
    ctx.fillRect(x, y - 8, 10, 10);
    ctx.fillStyle = COLORS.text;
    ctx.fillText(label, x + 14, y);
    x += 24 + ctx.measureText(label).width;
  }
}

/** Rows of the numbered event list: at most 4 columns (so labels stay readable), at least 6 rows. */
function listRows(events: number): number {
  return Math.max(1, Math.min(events, Math.max(6, Math.ceil(events / 4))));
}

function eventList(ctx: CanvasRenderingContext2D, events: readonly MemoryEvent[], y: number, rows: number): void {
  const cols = Math.ceil(events.length / rows);
  const colW = (W - PAD.left) / Math.max(1, cols);
  ctx.font = "10px sans-serif";
  ctx.fillStyle = COLORS.text;
  events.forEach((e, i) => {
    const label = `${i + 1} ${e.label}`;
    const room = colW - 8;
    let text = label;
    while (text.length > 4 && ctx.measureText(text).width > room) text = text.slice(0, -2);
    if (text !== label) text = text.slice(0, -1) + "…";
    ctx.fillText(text, PAD.left + Math.floor(i / rows) * colW, y + (i % rows) * 13);
  });
}

function drawComponents(ctx: CanvasRenderingContext2D, components: readonly ComponentMemory[], y0: number): void {
  const total = (c: ComponentMemory) => Object.values(c.weightBytes).reduce((a: number, b) => a + (b ?? 0), 0);
  const max = Math.max(1, ...components.map(total));
  const barW = W - PAD.left - PAD.right - 260; // room for the label after the longest bar
  ctx.font = "10px sans-serif";
  components.forEach((c, i) => {
    const y = y0 + i * 18;
    const weights = total(c);
    ctx.fillStyle = COLORS.text;
    ctx.fillText(c.name, 4, y + 10);
    ctx.fillStyle = COLORS.weights;
    ctx.fillRect(PAD.left + 40, y, (weights / max) * barW, 12);
    if (c.loaded) {
      ctx.fillStyle = COLORS.resident;
      ctx.fillRect(PAD.left + 40, y, (Math.min(c.residentWeightBytes, weights) / max) * barW, 12);
    }
    const dtypes = Object.keys(c.weightBytes).join("+");
    const onGpu = c.gpuBytes === undefined ? "" : `, ${formatBytes(c.gpuBytes)} on ${c.device ?? "GPU"}`;
    const text = c.loaded ? `${formatBytes(weights)} ${dtypes}, ${formatBytes(c.residentWeightBytes)} resident${onGpu}` : "not loaded";
    ctx.fillStyle = COLORS.text;
    ctx.fillText(text, PAD.left + 46 + (c.loaded ? (weights / max) * barW : 0), y + 10);
  });
}

/** The report's PNG: timeline (when there are events) and the per-component weight bars. */
export function memoryChartPng(components: readonly ComponentMemory[], timeline: readonly MemoryEvent[], footer: string): Buffer {
  const rows = listRows(timeline.length);
  const timelineH = timeline.length > 0 ? PAD.top + PLOT_H + 36 + rows * 13 + 8 : 0;
  const componentsH = 24 + components.length * 18;
  const height = timelineH + componentsH + 22;
  const canvas = createCanvas(W, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, W, height);
  ctx.fillStyle = COLORS.text;
  ctx.font = "bold 12px sans-serif";
  if (timeline.length > 0) {
    ctx.fillText("process memory over time", 4, 14);
    drawTimeline(ctx, timeline, PAD.top);
    legend(ctx, PAD.top + PLOT_H + 28, timeline.some((e) => e.gpuUsed !== undefined));
    eventList(ctx, timeline, PAD.top + PLOT_H + 44, rows);
  }
  ctx.fillStyle = COLORS.text;
  ctx.font = "bold 12px sans-serif";
  ctx.fillText("weights by component (green: resident now)", 4, timelineH + 14);
  drawComponents(ctx, components, timelineH + 22);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = COLORS.text;
  ctx.fillText(footer, 4, height - 6);
  return canvas.toBuffer("image/png");
}
