/**
 * Live progress in a notebook: each pipeline operation (fromPretrained, load, encodePrompt, call, decodeLatents)
 * shows one output that updates in place (one display id): the stage, step k/N with elapsed time, ETA and it/s,
 * and during denoising a latent preview every step. The finished output keeps the step history as an
 * application/vnd.pixart.latents+json payload (for a renderer to scrub through), a PNG grid of steps and a text
 * summary. The kernel registers this as the pipeline's default progress listener; outside a kernel nothing shows.
 */
import { encodeUint8, quantizeUint8 } from "./arrays";
import { display, getKernelBridge, newDisplayId, type MimeBundle } from "./display";
import { latentsToRgb, previewPng, projectionFor, type LatentProjection, type PreviewTile } from "./latent-preview";
import type { LatentStep, LatentsPayload } from "./payloads";
import { LATENTS_MIME } from "./schemas";
import { setDefaultProgress, type PipelineOperation, type PipelineStage, type ProgressEvent, type StepEvent } from "../runtime/progress";

/** Steps kept for the finished output's history (long runs keep an even sample that always includes the last). */
const KEPT_STEPS = 48;
/** Tiles in the finished output's PNG grid. */
const GRID_TILES = 8;
/** Outside denoising, how often a running stage's elapsed time is refreshed. */
const TICK_MS = 1000;

export type ProgressSend = (bundle: MimeBundle, options: { displayId: string; update: boolean }) => void;

interface KeptStep {
  step: number;
  timestep: number;
  elapsedMs: number;
  rgb: Uint8Array;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 3600 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function bar(fraction: number, width = 20): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}]`;
}

/** Evenly spaced picks from `items`, always the first and the last. */
export function evenSample<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  if (count <= 1) return [items[items.length - 1]];
  return Array.from({ length: count }, (_, i) => items[Math.round((i * (items.length - 1)) / (count - 1))]);
}

/** The listener for one operation; `send` shows or replaces its one output. */
export class LiveProgress {
  private readonly displayId = newDisplayId();
  private shown = false;
  private readonly finished: { stage: PipelineStage; label: string; durationMs: number }[] = [];
  private current: { stage: PipelineStage; label: string; startedAt: number; totalSteps?: number } | undefined;
  private elapsedMs = 0;
  private lastStep: StepEvent | undefined;
  private latentDims: number[] | undefined;
  private projection: LatentProjection | undefined;
  private kept: KeptStep[] = [];
  private stride = 1;
  private last: KeptStep | undefined;
  private finalLatents: Float32Array | undefined;
  /** The last VAE-decoded preview (call({ previewDecodeEvery })): uint8 RGB [B, H, W, 3]. */
  private decoded: { step: number; rgb: Uint8Array; height: number; width: number } | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private lastSent = 0;

  /** `send` shows a bundle under the display id (a new output the first time, an update after); display() by default. */
  constructor(readonly operation: PipelineOperation, private readonly send: ProgressSend = (bundle, options) => void display(bundle, options)) {}

  readonly listener = (event: ProgressEvent): void => {
    try {
      this.handle(event);
    } catch (e) {
      // The emitter drops a listener that throws, so no "end" would come to stop the ticker.
      clearInterval(this.ticker);
      throw e;
    }
  };

  private handle(event: ProgressEvent): void {
    this.elapsedMs = event.elapsedMs;
    switch (event.type) {
      case "begin":
        this.ticker = setInterval(() => this.tick(), TICK_MS);
        this.ticker.unref();
        this.show(this.statusBundle());
        return;
      case "stage-start":
        this.current = { stage: event.stage, label: event.label, startedAt: Date.now(), ...(event.totalSteps ? { totalSteps: event.totalSteps } : {}) };
        this.show(this.statusBundle());
        return;
      case "step":
        this.onStep(event);
        return;
      case "stage-end":
        this.finished.push({ stage: event.stage, label: event.label + (event.error ? " (failed)" : ""), durationMs: event.durationMs });
        this.current = undefined; // shown with the next stage-start or the end, which follow at once
        return;
      case "end":
        clearInterval(this.ticker);
        this.show(this.finalBundle(event.error));
        return;
    }
  }

  private onStep(event: StepEvent): void {
    const { data, dims } = event.latents;
    this.lastStep = event;
    this.latentDims = [...dims];
    this.projection ??= projectionFor(dims[1]);
    const step: KeptStep = { step: event.step, timestep: event.timestep, elapsedMs: event.elapsedMs, rgb: latentsToRgb(data, dims, this.projection) };
    this.last = step;
    this.finalLatents = Float32Array.from(data);
    if (event.decoded) {
      const [, height, width] = event.decoded.dims;
      this.decoded = { step: event.step, rgb: Uint8Array.from(event.decoded.data, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)), height, width };
    }
    if ((event.step - 1) % this.stride === 0) this.kept.push(step);
    if (this.kept.length >= 2 * KEPT_STEPS) {
      this.kept = this.kept.filter((_, i) => i % 2 === 0);
      this.stride *= 2;
    }
    this.show(this.statusBundle());
  }

  /** Refreshes the elapsed time of a long stage (a load, the encoder, the VAE) that sends nothing by itself. */
  private tick(): void {
    try {
      if (this.current && this.current.stage !== "denoise" && Date.now() - this.lastSent >= TICK_MS) this.show(this.statusBundle());
    } catch (e) {
      clearInterval(this.ticker);
      console.warn(`pixart-ts: progress display stopped: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private show(bundle: MimeBundle): void {
    this.send(bundle, { displayId: this.displayId, update: this.shown });
    this.shown = true;
    this.lastSent = Date.now();
  }

  private statusLine(): string {
    const head = `${this.operation}`;
    const cur = this.current;
    if (!cur) return `${head} · ${formatDuration(this.elapsedMs)}`;
    const inStage = Date.now() - cur.startedAt;
    const s = this.lastStep;
    if (cur.stage === "denoise" && s) {
      return `${head} · ${cur.label} · step ${s.step}/${s.totalSteps} ${bar(s.step / s.totalSteps)} ${Math.round((100 * s.step) / s.totalSteps)}% · ` +
        `elapsed ${formatDuration(s.stageElapsedMs)} · ETA ${formatDuration(s.etaMs)} · ${s.itPerSec.toFixed(2)} it/s`;
    }
    return `${head} · ${cur.label} · ${formatDuration(inStage)}`;
  }

  private stagesText(): string[] {
    return this.finished.map((f) => `  ✓ ${f.label} ${formatDuration(f.durationMs)}`);
  }

  private statusBundle(): MimeBundle {
    const text = [this.statusLine(), ...this.stagesText()].join("\n");
    if (!this.last || !this.latentDims) return { "text/plain": text };
    const s = this.lastStep!;
    const denoising = this.current?.stage === "denoise";
    const payload = this.payload(false, [this.last], {
      stage: this.current?.stage ?? "denoise",
      ...(this.current ? { label: this.current.label } : {}),
      step: s.step, totalSteps: s.totalSteps, elapsedMs: this.elapsedMs,
      ...(denoising ? { etaMs: s.etaMs, itPerSec: s.itPerSec } : {}),
    });
    const caption = denoising ? `step ${s.step}/${s.totalSteps} · ETA ${formatDuration(s.etaMs)} · ${s.itPerSec.toFixed(2)} it/s` : this.statusLine();
    const png = this.png([this.last], { caption, fraction: s.step / s.totalSteps, columns: 2 });
    return { [LATENTS_MIME]: payload, "image/png": png, "text/plain": text };
  }

  private finalBundle(error: string | undefined): MimeBundle {
    const total = `${this.operation} ${error ? "failed" : "done"} in ${formatDuration(this.elapsedMs)}` + (error ? `: ${error}` : "");
    const s = this.lastStep;
    const rate = s ? ` · ${s.step} steps at ${s.itPerSec.toFixed(2)} it/s` : "";
    const text = [total + rate, ...this.stagesText()].join("\n");
    if (!this.last || !this.latentDims || !s) return { "text/plain": text };
    const history = this.kept[this.kept.length - 1] === this.last ? this.kept : [...this.kept, this.last];
    const steps = evenSample(history, KEPT_STEPS);
    const payload = this.payload(true, steps, { stage: "done", step: s.step, totalSteps: s.totalSteps, elapsedMs: this.elapsedMs, itPerSec: s.itPerSec });
    payload.latents = quantizeUint8(this.finalLatents!, this.latentDims);
    const tiles = evenSample(steps, GRID_TILES);
    const png = this.png(tiles, { columns: Math.min(4, tiles.length), caption: total + rate });
    return { [LATENTS_MIME]: payload, "image/png": png, "text/plain": text };
  }

  private payload(done: boolean, steps: KeptStep[], progress: NonNullable<LatentsPayload["progress"]>): LatentsPayload {
    const [b, , h, w] = this.latentDims!;
    const s = this.lastStep!;
    return {
      version: 1,
      latentShape: this.latentDims!,
      numInferenceSteps: s.totalSteps,
      done,
      progress,
      stages: this.finished.map((f) => ({ ...f })),
      projection: this.projection!,
      steps: steps.map((k): LatentStep => ({ step: k.step, timestep: k.timestep, elapsedMs: k.elapsedMs, preview: encodeUint8(k.rgb, [b, h, w, 3]) })),
    };
  }

  private png(steps: KeptStep[], options: { columns?: number; caption?: string; fraction?: number }): string {
    const [b, , h, w] = this.latentDims!;
    const tiles: PreviewTile[] = steps.map((k) => ({ rgb: k.rgb, label: `step ${k.step} · t=${Math.round(k.timestep)}` }));
    if (this.decoded && options.fraction !== undefined) tiles.push({ ...this.decoded, label: `VAE decode, step ${this.decoded.step}` });
    return previewPng(tiles, { batch: b, height: h, width: w }, options).toString("base64");
  }
}

/** Registers the live display as the pipeline's default progress (called by the kernel at start-up). */
export function installLiveProgress(): void {
  setDefaultProgress((operation) => (getKernelBridge() ? new LiveProgress(operation).listener : undefined));
}
