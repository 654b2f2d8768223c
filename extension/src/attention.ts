/**
 * application/vnd.pixart.attention+json: per generated image, the picture with the selected word's heat map over
 * it (opacity control), a word selector (the prompt's words as buttons; words cut by the sequence limit shown
 * disabled), and the word's raw map on the transformer's patch grid as a plotly heat map (hover for values).
 */
import type { AttentionImagePayload, AttentionPayload } from "../../src/display/payloads";
import { ArrayDataError, decodeBytes, decodeFloat, expectDims } from "./decode";
import { el, putRgb } from "./dom";
import { plotlyText, themedLayout } from "./plotly";
import { plotInto, type Draw, type Figure, type Plot, type RenderContext } from "./render";

const IMAGE_PX = 256;
const DEFAULT_OPACITY = 0.6;

/** Viridis at five stops, interpolated: dark blue (0) → green → yellow (1). */
const STOPS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export function heatColor(v: number): [number, number, number] {
  const t = Math.min(1, Math.max(0, v)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t));
  const f = t - i;
  const [a, b] = [STOPS[i]!, STOPS[i + 1]!];
  return [0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * f)) as [number, number, number];
}

/** The decoded arrays of one image, checked against each other. */
interface ImageData {
  words: AttentionImagePayload["words"];
  mapH: number;
  mapW: number;
  wordMaps: Float32Array;
  tokenMaps: Float32Array;
  rgb?: Uint8Array;
}

function decodeImage(p: AttentionPayload, image: AttentionImagePayload, n: number): ImageData {
  const at = `images[${n}]`;
  const [rows, cols] = p.grid;
  const [, mapH, mapW] = expectDims(image.wordMaps, `${at}.wordMaps`, 3, [image.words.length]);
  expectDims(image.tokenMaps, `${at}.tokenMaps`, 3, [image.tokens.length, rows, cols]);
  image.words.forEach((w, i) => {
    const bad = w.tokens.find((t) => t >= image.tokens.length);
    if (bad !== undefined) throw new ArrayDataError(`${at}.words[${i}] ("${w.text}"): token ${bad} is past the ${image.tokens.length} tokens`);
  });
  const data: ImageData = { words: image.words, mapH: mapH!, mapW: mapW!, wordMaps: decodeFloat(image.wordMaps, `${at}.wordMaps`), tokenMaps: decodeFloat(image.tokenMaps, `${at}.tokenMaps`) };
  if (image.image) {
    expectDims(image.image, `${at}.image`, 3, [mapH, mapW, 3]);
    data.rgb = decodeBytes(image.image, `${at}.image`);
  }
  return data;
}

/** The word's map as RGB of the colour map (non-finite values black). */
function heatRgb(d: ImageData, word: number): Uint8Array {
  const plane = d.mapH * d.mapW;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    const v = d.wordMaps[word * plane + i]!;
    if (Number.isFinite(v)) rgb.set(heatColor(v), i * 3);
  }
  return rgb;
}

/** The word's raw map on the patch grid: the mean of its pieces' token maps, rows top to bottom; null where not finite. */
export function rawWordMap(d: ImageData, word: number, rows: number, cols: number): (number | null)[][] {
  const tokens = d.words[word]!.tokens;
  const z: (number | null)[][] = [];
  for (let r = 0; r < rows; r++) {
    const row: (number | null)[] = [];
    for (let c = 0; c < cols; c++) {
      let sum = 0;
      for (const t of tokens) sum += d.tokenMaps[(t * rows + r) * cols + c]!;
      const v = sum / tokens.length;
      row.push(Number.isFinite(v) ? v : null);
    }
    z.push(row);
  }
  return z;
}

/** Indices as "0–19" when consecutive, else "0, 4, 9". */
export function listOf(indices: number[]): string {
  const consecutive = indices.length > 2 && indices.every((v, i) => i === 0 || v === indices[i - 1]! + 1);
  return consecutive ? `${indices[0]}–${indices[indices.length - 1]}` : indices.join(", ");
}

function figure(host: Element, p: AttentionPayload, d: ImageData, word: number): Figure {
  const [rows, cols] = p.grid;
  const layout = themedLayout(host);
  const steps = p.steps.length > 0 ? `steps ${listOf(p.steps)}` : "no steps";
  return {
    data: [{ type: "heatmap", z: rawWordMap(d, word, rows, cols), colorscale: "Viridis", hovertemplate: "row %{y}, col %{x}: %{z:.4g}<extra></extra>", colorbar: { thickness: 12 } }],
    layout: {
      ...layout,
      title: { text: plotlyText(`"${d.words[word]!.text}" on the ${rows}×${cols} patch grid`), font: { size: 12 } },
      xaxis: { ...(layout["xaxis"] as object), title: { text: "patch column" }, constrain: "domain" },
      yaxis: { ...(layout["yaxis"] as object), title: { text: `patch row · blocks ${listOf(p.layers)} · ${steps}` }, autorange: "reversed", scaleanchor: "x" },
      width: 360,
      height: 340,
    },
  };
}

function drawImage(ctx: RenderContext, host: HTMLElement, p: AttentionPayload, image: AttentionImagePayload, n: number): Plot | undefined {
  const doc = ctx.doc;
  const d = decodeImage(p, image, n);
  const box = el(doc, "div", "jp-pixart-attention-image");
  if (image.prompt !== undefined) box.append(el(doc, "div", "jp-pixart-note", `prompt: ${image.prompt}`));
  const words = el(doc, "div", "jp-pixart-words");
  words.setAttribute("role", "group");
  words.setAttribute("aria-label", "words of the prompt");
  const row = el(doc, "div", "jp-pixart-row");
  box.append(words, row);
  host.append(box);

  const scale = Math.max(1, Math.floor(IMAGE_PX / Math.max(d.mapH, d.mapW)));
  const size = (c: HTMLCanvasElement) => {
    c.width = d.mapW;
    c.height = d.mapH;
    c.style.width = `${d.mapW * scale}px`;
    c.style.height = `${d.mapH * scale}px`;
  };
  const overlay = el(doc, "figure", "jp-pixart-overlay-figure");
  const stack = el(doc, "div", "jp-pixart-overlay");
  const heat = el(doc, "canvas", "jp-pixart-pixels jp-pixart-heat");
  size(heat);
  heat.setAttribute("role", "img");
  if (d.rgb) {
    const base = el(doc, "canvas", "jp-pixart-pixels jp-pixart-image");
    size(base);
    base.setAttribute("role", "img");
    base.setAttribute("aria-label", "generated image");
    putRgb(base, d.rgb, d.mapW, d.mapH);
    stack.append(base);
    heat.style.opacity = String(DEFAULT_OPACITY);
  }
  stack.append(heat);
  const caption = el(doc, "figcaption");
  overlay.append(stack, caption);
  if (d.rgb) {
    const opacity = el(doc, "input", "jp-pixart-slider jp-pixart-opacity");
    opacity.type = "range";
    opacity.min = "0";
    opacity.max = "100";
    opacity.value = String(DEFAULT_OPACITY * 100);
    opacity.setAttribute("aria-label", "heat-map opacity");
    opacity.addEventListener("input", () => (heat.style.opacity = String(Number(opacity.value) / 100)));
    const controls = el(doc, "label", "jp-pixart-controls", "opacity");
    controls.append(opacity);
    overlay.append(controls);
  }
  const plotDiv = el(doc, "div");
  row.append(overlay, plotDiv);

  const buttons = d.words.map((w, i) => {
    const b = el(doc, "button", "jp-pixart-button jp-pixart-word", w.truncated ? `${w.text}…` : w.text);
    b.type = "button";
    if (w.truncated) b.title = "some of this word's pieces fell past the sequence limit; the map is of the rest";
    b.addEventListener("click", () => select(i));
    words.append(b);
    return b;
  });
  for (const cut of image.cutWords) {
    const b = el(doc, "button", "jp-pixart-button jp-pixart-word", cut);
    b.type = "button";
    b.disabled = true;
    b.title = "past the sequence limit: the model never saw this word";
    words.append(b);
  }

  let plot: Plot | undefined;
  const select = (i: number) => {
    buttons.forEach((b, k) => b.setAttribute("aria-pressed", String(k === i)));
    putRgb(heat, heatRgb(d, i), d.mapW, d.mapH);
    heat.dataset["word"] = d.words[i]!.text;
    heat.setAttribute("aria-label", `attention map of "${d.words[i]!.text}"`);
    caption.textContent = `"${d.words[i]!.text}": ${d.mapW}×${d.mapH}, normalised to [0, 1]`;
    if (plot) void plot.update(figure(host, p, d, i)).catch(() => undefined);
  };
  if (d.words.length === 0) {
    caption.textContent = "no words to map (the prompt was given as embeddings, or every word was cut)";
    return undefined;
  }
  select(0);
  plot = plotInto(plotDiv, ctx, () => figure(host, p, d, 0));
  return plot;
}

export const drawAttention: Draw<AttentionPayload> = (host, p, ctx) => {
  const doc = ctx.doc;
  const root = el(doc, "div", "jp-pixart-attention");
  const steps = p.steps.length > 0 ? `steps ${listOf(p.steps)} summed` : "no steps";
  root.append(el(doc, "div", "jp-pixart-title", `Cross-attention maps ${p.width}×${p.height}: blocks ${listOf(p.layers)} averaged, ${steps}, patch grid ${p.grid[0]}×${p.grid[1]}`));
  host.append(root);
  const plots = p.images.flatMap((image, n) => {
    if (p.images.length > 1) root.append(el(doc, "div", "jp-pixart-title", `image ${n + 1}`));
    return drawImage(ctx, root, p, image, n) ?? [];
  });
  return {
    ready: Promise.all(plots.map((x) => x.ready)).then(() => undefined),
    resize: () => plots.forEach((x) => x.resize()),
    dispose: () => plots.forEach((x) => x.dispose()),
  };
};
