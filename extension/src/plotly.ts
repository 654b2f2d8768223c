/**
 * plotly.js, cartesian traces only (heatmap, scatter, bar), loaded on the first plot as its own chunk so the
 * extension's main bundle stays small. One shared promise: every renderer waits for the same load.
 */

/** The part of plotly's API the renderers use. */
export interface PlotlyLike {
  newPlot(root: HTMLElement, data: object[], layout?: object, config?: object): Promise<unknown>;
  purge(root: HTMLElement): void;
  Plots: { resize(root: HTMLElement): void };
}

export type PlotlyLoader = () => Promise<PlotlyLike>;

let loading: Promise<PlotlyLike> | undefined;

/** Loads plotly once (a separate webpack chunk: the dynamic import below is the split point). */
export const loadPlotly: PlotlyLoader = () => {
  loading ??= import("plotly.js-cartesian-dist-min").then((m) => ((m as { default?: PlotlyLike }).default ?? (m as unknown as PlotlyLike)));
  return loading;
};

/** Common layout: transparent background, theme font colour, compact margins. */
export function baseLayout(fontColor: string, gridColor: string): Record<string, unknown> {
  return {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: fontColor, size: 11 },
    margin: { l: 56, r: 16, t: 32, b: 40 },
    xaxis: { gridcolor: gridColor, zerolinecolor: gridColor },
    yaxis: { gridcolor: gridColor, zerolinecolor: gridColor },
  };
}

export const plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };
