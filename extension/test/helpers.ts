/** Test helpers: real payloads from the committed, executed tutorial notebooks, and a jsdom document to draw in. */
import * as fs from "fs";
import * as path from "path";
import { JSDOM } from "jsdom";
import type { PlotlyLike } from "../src/plotly";
import type { RenderContext } from "../src/render";

export const repoRoot = path.resolve(__dirname, "..", "..", "..", "..");

export interface Bundle {
  notebook: string;
  cell: number;
  data: Record<string, unknown>;
}

/** Every output bundle of the committed notebooks that carries `mime`. */
export function notebookBundles(mime: string): Bundle[] {
  const dir = path.join(repoRoot, "notebooks");
  const out: Bundle[] = [];
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith(".ipynb")).sort()) {
    const nb = JSON.parse(fs.readFileSync(path.join(dir, name), "utf8")) as { cells: { outputs?: { data?: Record<string, unknown> }[] }[] };
    nb.cells.forEach((cell, i) => {
      for (const o of cell.outputs ?? []) if (o.data && mime in o.data) out.push({ notebook: name, cell: i, data: o.data });
    });
  }
  return out;
}

export function newDocument(): { doc: Document; window: Window & typeof globalThis; host: HTMLElement } {
  const dom = new JSDOM("<!doctype html><html><body></body></html>", { pretendToBeVisual: true });
  const doc = dom.window.document;
  const host = doc.createElement("div");
  doc.body.append(host);
  return { doc, window: dom.window as unknown as Window & typeof globalThis, host };
}

/** A stand-in for plotly that records what it was asked to draw (plotly itself needs a real layout engine). */
export class PlotlyRecorder implements PlotlyLike {
  plots: { root: HTMLElement; data: Record<string, unknown>[]; layout: Record<string, unknown> }[] = [];
  purged: HTMLElement[] = [];
  Plots = { resize: () => {} };
  async newPlot(root: HTMLElement, data: object[], layout?: object): Promise<unknown> {
    this.plots.push({ root, data: data as Record<string, unknown>[], layout: (layout ?? {}) as Record<string, unknown> });
    root.append(root.ownerDocument.createElement("svg"));
    return root;
  }
  /** Redraws: the root's plot is replaced by the new figure. */
  async react(root: HTMLElement, data: object[], layout?: object): Promise<unknown> {
    this.plots = this.plots.filter((p) => p.root !== root);
    return this.newPlot(root, data, layout);
  }
  /** The figure drawn in `root` now. */
  figureOf(root: Element) {
    return this.plots.find((p) => p.root === root);
  }
  purge(root: HTMLElement): void {
    this.purged.push(root);
  }
}

export function context(doc: Document, plotly: PlotlyLike = new PlotlyRecorder(), fallbackPng?: unknown): RenderContext {
  return { doc, loadPlotly: async () => plotly, fallbackPng };
}

/** A deep copy of a payload to break. */
export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
