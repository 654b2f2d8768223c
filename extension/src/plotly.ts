import { themeColor } from "./dom";

/**
 * plotly.js, cartesian traces only (heatmap, scatter, bar), loaded on the first plot as its own chunk so the
 * extension's main bundle stays small. One shared promise: every renderer waits for the same load.
 */

/** The part of plotly's API the renderers use. */
export interface PlotlyLike {
  newPlot(root: HTMLElement, data: object[], layout?: object, config?: object): Promise<unknown>;
  react(root: HTMLElement, data: object[], layout?: object, config?: object): Promise<unknown>;
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

/** Layout shared by every plot: transparent background and the JupyterLab theme's font and border colours. */
export function themedLayout(host: Element): Record<string, unknown> {
  const font = themeColor(host, "--jp-ui-font-color1", "#222");
  const grid = themeColor(host, "--jp-border-color2", "#ddd");
  const axis = { gridcolor: grid, zerolinecolor: grid, linecolor: grid };
  return {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: font, size: 11, family: themeColor(host, "--jp-ui-font-family", "sans-serif") },
    margin: { l: 60, r: 16, t: 36, b: 44 },
    xaxis: { ...axis },
    yaxis: { ...axis },
  };
}

/**
 * A string from an output as plotly text. Plotly reads a few HTML-like tags in text (<b>, <br>, <a href>) and turns
 * them into SVG; escaping &, < and > makes it show them literally instead (it writes the result as text nodes).
 */
export function plotlyText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
