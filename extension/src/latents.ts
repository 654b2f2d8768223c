/**
 * application/vnd.pixart.latents+json: a step scrubber (slider + play) over the kept RGB previews, the final
 * latents' channels as a grid of grey-scale images, and the final preview beside them.
 */
import type { LatentsPayload } from "../../src/display/payloads";
import { decodeBytes, decodeFloat, expectDims } from "./decode";
import { el, formatMs, putRgb, rgbCanvas } from "./dom";
import type { Draw } from "./render";

/** Milliseconds between frames while playing. */
const FRAME_MS = 350;
const PREVIEW_PX = 192;
const CHANNEL_PX = 96;

function summary(p: LatentsPayload): string {
  const pr = p.progress;
  if (!pr) return p.done ? `${p.numInferenceSteps} steps, done` : "starting";
  const parts: string[] = [];
  if (pr.stage === "done" || p.done) parts.push(`done in ${formatMs(pr.elapsedMs)}`);
  else parts.push(pr.label ?? pr.stage);
  if (pr.step !== undefined && pr.totalSteps !== undefined) parts.push(`step ${pr.step}/${pr.totalSteps}`);
  if (pr.itPerSec !== undefined) parts.push(`${pr.itPerSec.toFixed(2)} it/s`);
  if (!p.done && pr.etaMs !== undefined) parts.push(`ETA ${formatMs(pr.etaMs)}`);
  return parts.join(" · ");
}

/** One grey-scale canvas per channel of batch item 0, each stretched over its own range. */
function channelGrid(doc: Document, p: LatentsPayload): HTMLElement | undefined {
  if (!p.latents) return undefined;
  const [batch, channels, h, w] = expectDims(p.latents, "latents", 4, p.latentShape);
  const values = decodeFloat(p.latents, "latents");
  const box = el(doc, "figure", "jp-pixart-channels");
  box.append(el(doc, "figcaption", undefined, `final latents: ${channels} channels${batch! > 1 ? " (image 1)" : ""}`));
  const grid = el(doc, "div", "jp-pixart-channel-grid");
  const plane = h! * w!;
  for (let c = 0; c < channels!; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < plane; i++) {
      const v = values[c * plane + i]!;
      if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    }
    const rgb = new Uint8Array(plane * 3);
    const span = hi > lo ? hi - lo : 1;
    for (let i = 0; i < plane; i++) {
      const v = values[c * plane + i]!;
      const g = Number.isFinite(v) ? Math.round(((v - lo) / span) * 255) : 0;
      rgb.fill(g, i * 3, i * 3 + 3);
    }
    const cell = el(doc, "div", "jp-pixart-channel");
    const range = Number.isFinite(lo) ? `${lo.toFixed(2)} … ${hi.toFixed(2)}` : "no finite values";
    cell.append(rgbCanvas(doc, rgb, w!, h!, CHANNEL_PX, `latent channel ${c}`), el(doc, "div", "jp-pixart-caption", `channel ${c}: ${range}`));
    grid.append(cell);
  }
  box.append(grid);
  return box;
}

/** Draws step `index`'s preview (every batch item side by side) into `canvas`. */
function drawStep(canvas: HTMLCanvasElement, p: LatentsPayload, index: number): void {
  const step = p.steps[index]!;
  const [batch, h, w] = expectDims(step.preview, `steps[${index}].preview`, 4, [undefined, undefined, undefined, 3]);
  const rgb = decodeBytes(step.preview, `steps[${index}].preview`);
  canvas.width = w! * batch!;
  canvas.height = h!;
  const scale = Math.max(1, Math.floor(PREVIEW_PX / Math.max(h!, w!)));
  canvas.style.width = `${canvas.width * scale}px`;
  canvas.style.height = `${canvas.height * scale}px`;
  // Batch items side by side: copy each item's rows into one wide image.
  const wide = new Uint8Array(canvas.width * h! * 3);
  for (let b = 0; b < batch!; b++) {
    for (let y = 0; y < h!; y++) wide.set(rgb.subarray(((b * h! + y) * w!) * 3, ((b * h! + y + 1) * w!) * 3), (y * canvas.width + b * w!) * 3);
  }
  putRgb(canvas, wide, canvas.width, h!);
}

export const drawLatents: Draw<LatentsPayload> = (host, p, ctx) => {
  const doc = ctx.doc;
  const root = el(doc, "div", "jp-pixart-latents");
  root.append(el(doc, "div", "jp-pixart-title", summary(p)));
  const row = el(doc, "div", "jp-pixart-row");
  root.append(row);
  let timer: number | undefined;
  const win = doc.defaultView!;

  if (p.steps.length > 0) {
    const panel = el(doc, "figure", "jp-pixart-scrubber");
    const canvas = el(doc, "canvas", "jp-pixart-pixels jp-pixart-frame");
    canvas.setAttribute("role", "img");
    const problem = el(doc, "div", "jp-pixart-frame-error");
    const slider = el(doc, "input", "jp-pixart-slider");
    slider.type = "range";
    slider.min = "0";
    slider.max = String(p.steps.length - 1);
    slider.step = "1";
    slider.setAttribute("aria-label", "denoising step");
    const play = el(doc, "button", "jp-pixart-button jp-mod-styled", "Play");
    play.type = "button";
    const label = el(doc, "span", "jp-pixart-step-label");
    const show = (index: number) => {
      const s = p.steps[index]!;
      slider.value = String(index);
      const time = s.elapsedMs !== undefined ? ` · ${formatMs(s.elapsedMs)}` : "";
      label.textContent = `step ${s.step}/${p.numInferenceSteps} · t = ${s.timestep}${time}`;
      canvas.setAttribute("aria-label", `latent preview after step ${s.step}`);
      canvas.dataset["step"] = String(s.step);
      try {
        drawStep(canvas, p, index);
        problem.textContent = "";
      } catch (e) {
        problem.textContent = `step ${s.step}: ${(e as Error).message}`;
      }
    };
    const stop = () => {
      if (timer !== undefined) win.clearInterval(timer);
      timer = undefined;
      play.textContent = "Play";
    };
    slider.addEventListener("input", () => {
      stop();
      show(Number(slider.value));
    });
    play.addEventListener("click", () => {
      if (timer !== undefined) return stop();
      if (Number(slider.value) >= p.steps.length - 1) show(0);
      play.textContent = "Pause";
      timer = win.setInterval(() => {
        const next = Number(slider.value) + 1;
        if (next >= p.steps.length) return stop();
        show(next);
      }, FRAME_MS);
    });
    const controls = el(doc, "div", "jp-pixart-controls");
    controls.append(play, slider, label);
    panel.append(el(doc, "figcaption", undefined, `latent preview (${p.projection?.name ?? "linear RGB"}), ${p.steps.length} of ${p.numInferenceSteps} steps kept`), canvas, controls, problem);
    row.append(panel);
    show(p.steps.length - 1);
  } else {
    row.append(el(doc, "div", "jp-pixart-note", "no step previews yet"));
  }

  const channels = channelGrid(doc, p);
  if (channels) row.append(channels);

  if (p.steps.length > 0) {
    // The final picture as the latents show it: the last kept step's preview, larger (the VAE image is the call's output).
    const last = p.steps[p.steps.length - 1]!;
    const final = el(doc, "figure", "jp-pixart-final");
    const canvas = el(doc, "canvas", "jp-pixart-pixels");
    try {
      drawStep(canvas, p, p.steps.length - 1);
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `final latents preview (step ${last.step})`);
      final.append(el(doc, "figcaption", undefined, `${p.done ? "final" : "latest"}: step ${last.step}`), canvas);
      row.append(final);
    } catch {
      // The scrubber already shows this step's problem.
    }
  }

  if (p.stages && p.stages.length > 0) {
    const list = el(doc, "ul", "jp-pixart-stages");
    for (const s of p.stages) list.append(el(doc, "li", undefined, `${s.label}: ${formatMs(s.durationMs)}`));
    root.append(list);
  }
  host.append(root);
  return {
    ready: Promise.resolve(),
    resize() {},
    dispose() {
      if (timer !== undefined) win.clearInterval(timer);
    },
  };
};
