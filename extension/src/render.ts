/**
 * What every renderer shares: parse and check the payload, fall back to the bundle's PNG for a newer version,
 * and put a message in place of the plot when the data is malformed. The renderers are plain functions from
 * (host element, payload) to DOM, so tests run them on a jsdom document without JupyterLab.
 */
import { errorBox, el, pngImage } from "./dom";
import { parsePayload, type PixartMime } from "./payload";
import type { PlotlyLoader } from "./plotly";

export interface RenderContext {
  doc: Document;
  loadPlotly: PlotlyLoader;
  /** The bundle's image/png (base64), shown when the payload is newer than this renderer. */
  fallbackPng?: unknown;
}

/** A drawn output: resolves `ready` when its plots are drawn; dispose stops timers and frees plots. */
export interface Rendered {
  ready: Promise<void>;
  resize(): void;
  dispose(): void;
}

export type Draw<T> = (host: HTMLElement, payload: T, ctx: RenderContext) => Rendered;

const nothing: Rendered = { ready: Promise.resolve(), resize() {}, dispose() {} };

/** Draws `data` of type `mime` into `host` (emptied first). Never throws: failures become a message in `host`. */
export function renderOutput<T>(mime: PixartMime, host: HTMLElement, data: unknown, ctx: RenderContext, draw: Draw<T>): Rendered {
  host.replaceChildren();
  host.classList.add("jp-pixart-output");
  const parsed = parsePayload<T>(mime, data);
  if (parsed.kind === "newer") {
    const note = `This output was written with version ${parsed.version} of ${mime}; this extension reads version ${parsed.supported}. Showing the picture saved with it. Update the pixart-ts extension to explore it.`;
    host.append(el(ctx.doc, "div", "jp-pixart-note", note));
    const img = pngImage(ctx.doc, ctx.fallbackPng, "the output's saved picture");
    host.append(img ?? errorBox(ctx.doc, "No picture to show", "the output has no image/png fallback"));
    return nothing;
  }
  if (parsed.kind === "invalid") {
    host.append(errorBox(ctx.doc, "Cannot draw this pixart-ts output", parsed.message));
    return nothing;
  }
  try {
    const rendered = draw(host, parsed.payload, ctx);
    return { ...rendered, ready: rendered.ready.catch((e) => plotFailed(host, ctx, e)) };
  } catch (e) {
    host.replaceChildren(errorBox(ctx.doc, "Cannot draw this pixart-ts output", (e as Error).message ?? String(e)));
    return nothing;
  }
}

function plotFailed(host: HTMLElement, ctx: RenderContext, e: unknown): void {
  for (const plot of host.querySelectorAll(".jp-pixart-plot")) {
    plot.replaceChildren(errorBox(ctx.doc, "The interactive plot could not be drawn", (e as Error)?.message ?? String(e)));
  }
}

export interface Plot {
  ready: Promise<void>;
  /** Redraws with a new figure (e.g. another word); waits for the first draw. */
  update(figure: Figure): Promise<void>;
  resize(): void;
  dispose(): void;
}

export interface Figure {
  data: object[];
  layout: object;
}

const plotConfig = { displaylogo: false, responsive: true };

/** A plotly figure in `div`, drawn once plotly has loaded (the first plot of the page loads it). */
export function plotInto(div: HTMLElement, ctx: RenderContext, figure: Figure | (() => Figure)): Plot {
  let plotly: Awaited<ReturnType<PlotlyLoader>> | undefined;
  let disposed = false;
  div.classList.add("jp-pixart-plot");
  const ready = ctx.loadPlotly().then(async (p) => {
    if (disposed) return;
    plotly = p;
    // Built now, not before the load: by then the output is in the page and sees the theme's colours.
    const { data, layout } = typeof figure === "function" ? figure() : figure;
    await p.newPlot(div, data, layout, plotConfig);
  });
  return {
    ready,
    update: async (next) => {
      await ready;
      if (plotly && !disposed) await plotly.react(div, next.data, next.layout, plotConfig);
    },
    resize: () => {
      if (plotly && !disposed) plotly.Plots.resize(div);
    },
    dispose: () => {
      disposed = true;
      plotly?.purge(div);
    },
  };
}
