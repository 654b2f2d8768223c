import * as assert from "assert";
import { drawMemory, MAX_TABLE_ROWS, peakEvent, weightSteps } from "../src/memory";
import type { MemoryPayloadV1 } from "../src/memory-types";
import { MEMORY_MIME } from "../src/payload";
import { renderOutput } from "../src/render";
import { clone, context, newDocument, notebookBundles, PlotlyRecorder } from "./helpers";

describe("extension: memory renderer", () => {
  const bundles = notebookBundles(MEMORY_MIME);
  // Notebook 04's delete/flush cycles: the longest timeline.
  const longest = () => clone([...bundles].sort((a, b) => JSON.stringify(b.data).length - JSON.stringify(a.data).length)[0]!.data[MEMORY_MIME]) as MemoryPayloadV1;

  it("draws a timeline plot and the event and component tables for every tutorial output", async () => {
    assert.ok(bundles.length >= 5);
    for (const b of bundles) {
      const p = b.data[MEMORY_MIME] as MemoryPayloadV1;
      const { doc, host } = newDocument();
      const plotly = new PlotlyRecorder();
      await renderOutput(MEMORY_MIME, host, p, context(doc, plotly), drawMemory).ready;
      const where = `${b.notebook} cell ${b.cell}`;
      assert.strictEqual(host.querySelector(".jp-pixart-error"), null, `${where}: ${host.textContent}`);
      const tables = host.querySelectorAll("table");
      assert.strictEqual(tables[0]!.tBodies[0]!.rows.length, Math.min(p.timeline.length, MAX_TABLE_ROWS), where);
      assert.strictEqual(tables[1]!.tBodies[0]!.rows.length, p.components.length, where);
      if (p.timeline.length > 0) assert.strictEqual(plotly.plots.length, 1, where);
    }
  });

  it("plots RSS as anonymous + file-backed stacked, marks the peak, and lists the events with their labels", async () => {
    const p = longest();
    const { doc, host } = newDocument();
    const plotly = new PlotlyRecorder();
    await renderOutput(MEMORY_MIME, host, p, context(doc, plotly), drawMemory).ready;
    const traces = plotly.plots[0]!.data as { name: string; y: number[]; stackgroup?: string }[];
    const anon = traces.find((t) => t.name === "RSS anonymous")!;
    const file = traces.find((t) => t.name === "RSS file-backed")!;
    assert.strictEqual(anon.stackgroup, "rss");
    assert.strictEqual(file.stackgroup, "rss");
    assert.strictEqual(anon.y[0], p.timeline[0]!.memory.rssAnon / 2 ** 20);
    const peak = peakEvent(p.timeline)!;
    const star = traces.find((t) => t.name === "peak")!;
    assert.strictEqual(star.y[0], peak.bytes / 2 ** 20);
    assert.strictEqual(peak.bytes, Math.max(...p.timeline.map((e) => Math.max(e.memory.rss, e.peakDuring ?? 0))));
    const peakRow = host.querySelector("tr.jp-pixart-peak")!;
    assert.strictEqual(peakRow.children[2]!.textContent, p.timeline[peak.index]!.label);
    const labels = [...host.querySelectorAll("table")[0]!.tBodies[0]!.rows].map((r) => r.cells[2]!.textContent);
    assert.deepStrictEqual(labels, p.timeline.map((e) => e.label));
  });

  it("draws each known component's weights from its load to its delete", () => {
    const p = longest();
    const steps = weightSteps(p.timeline, p.components);
    const te = steps.find((s) => s.name === "textEncoder");
    assert.ok(te, "notebook 04 ends with the text encoder loaded");
    // Notebook 04 deletes and reloads the text encoder: the line drops to 0 and comes back.
    assert.ok(te.y.includes(0) && te.y.some((v) => v > 0), JSON.stringify(te.y));
    const loads = p.timeline.filter((e) => e.component === "textEncoder" && (e.kind === "load" || e.kind === "delete")).length;
    assert.strictEqual(te.x.length, loads + 1);
  });

  it("shows GPU memory when the report has it", async () => {
    const p = longest();
    p.gpu = { usedBytes: 3 * 2 ** 30, scope: "process" };
    p.timeline.forEach((e, i) => (e.gpuUsed = i * 2 ** 20));
    p.components[0]!.gpuBytes = 2 ** 30;
    const { doc, host } = newDocument();
    const plotly = new PlotlyRecorder();
    await renderOutput(MEMORY_MIME, host, p, context(doc, plotly), drawMemory).ready;
    assert.match(host.querySelector(".jp-pixart-title")!.textContent!, /GPU 3\.0 GiB/);
    assert.ok((plotly.plots[0]!.data as { name: string }[]).some((t) => t.name === "GPU (this process)"));
    assert.strictEqual(host.querySelectorAll("table")[0]!.tHead!.rows[0]!.cells[7]!.textContent, "GPU");
  });

  it("plots take the JupyterLab theme's colours, also when drawn before the output is attached", async () => {
    const { doc } = newDocument();
    const style = doc.createElement("style");
    style.textContent = ":root { --jp-ui-font-color1: rgb(230, 230, 230); --jp-border-color2: rgb(60, 60, 60); }";
    doc.head.append(style);
    const detached = doc.createElement("div");
    const plotly = new PlotlyRecorder();
    await renderOutput(MEMORY_MIME, detached, longest(), context(doc, plotly), drawMemory).ready;
    const layout = plotly.plots[0]!.layout as { font: { color: string }; xaxis: { gridcolor: string } };
    assert.strictEqual(layout.font.color.replace(/\s/g, ""), "rgb(230,230,230)");
    assert.strictEqual(layout.xaxis.gridcolor.replace(/\s/g, ""), "rgb(60,60,60)");
  });

  it("a huge timeline keeps the table to its last rows", async () => {
    const p = longest();
    const e = p.timeline[0]!;
    p.timeline = Array.from({ length: 20000 }, (_, i) => ({ ...e, at: i, label: `event ${i}` }));
    const { doc, host } = newDocument();
    await renderOutput(MEMORY_MIME, host, p, context(doc), drawMemory).ready;
    const rows = host.querySelectorAll("table")[0]!.tBodies[0]!.rows;
    assert.strictEqual(rows.length, MAX_TABLE_ROWS);
    assert.strictEqual(rows[rows.length - 1]!.cells[2]!.textContent, "event 19999");
    assert.match(host.textContent!, /the last 200 of 20000 events/);
  });
});
