/**
 * DOM helpers for the renderers. Every string from an output goes in through textContent or an attribute that is
 * not a URL or handler; nothing is ever parsed as HTML.
 */

export function el<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A message in place of a plot: what is wrong with the data, as text. */
export function errorBox(doc: Document, title: string, detail: string): HTMLElement {
  const box = el(doc, "div", "jp-pixart-error");
  box.setAttribute("role", "alert");
  box.append(el(doc, "strong", undefined, title), el(doc, "div", "jp-pixart-error-detail", detail));
  return box;
}

/** A base64 PNG as an image, only when it really is one (data from outputs is untrusted). */
export function pngImage(doc: Document, png: unknown, alt: string): HTMLImageElement | undefined {
  if (typeof png !== "string" || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(png) || !png.startsWith("iVBORw0KGgo")) return undefined;
  const img = el(doc, "img", "jp-pixart-fallback-image");
  img.alt = alt;
  img.src = `data:image/png;base64,${png.replace(/\s+/g, "")}`;
  return img;
}

/** A canvas of w×h holding RGB bytes (row-major, 3 per pixel) scaled up with crisp pixels. */
export function rgbCanvas(doc: Document, rgb: Uint8Array, width: number, height: number, cssSize: number, label: string): HTMLCanvasElement {
  const canvas = el(doc, "canvas", "jp-pixart-pixels");
  canvas.width = width;
  canvas.height = height;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  const scale = Math.max(1, Math.floor(cssSize / Math.max(width, height)));
  canvas.style.width = `${width * scale}px`;
  canvas.style.height = `${height * scale}px`;
  putRgb(canvas, rgb, width, height);
  return canvas;
}

export function putRgb(canvas: HTMLCanvasElement, rgb: Uint8Array, width: number, height: number, offset = 0): void {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const image = ctx.createImageData(width, height);
  for (let p = 0; p < width * height; p++) {
    image.data[p * 4] = rgb[offset + p * 3]!;
    image.data[p * 4 + 1] = rgb[offset + p * 3 + 1]!;
    image.data[p * 4 + 2] = rgb[offset + p * 3 + 2]!;
    image.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

/** Bytes as B / KiB / MiB / GiB, the way the library's text tables write them. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10000 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}

/** The value of a JupyterLab theme variable on `node` (light and dark themes set them), or `fallback`. */
export function themeColor(node: Element, name: string, fallback: string): string {
  const view = node.ownerDocument.defaultView;
  // JupyterLab's themes set the variables on the document; an output not yet attached inherits nothing.
  const from = node.isConnected ? node : node.ownerDocument.documentElement;
  const value = view?.getComputedStyle(from).getPropertyValue(name).trim();
  return value || fallback;
}
