/**
 * Pipeline components you can leave out, load later and take apart cell by cell:
 *
 *   delete pipe.textEncoder;        // or pipe.textEncoder = null, or pipe.unload("textEncoder")
 *   const report = await pipe.flush();
 *
 * Removing a model releases its onnxruntime session at once (a dropped session would keep its memory until
 * V8 collects it); `flush()` waits for those releases, runs the garbage collector when node has --expose-gc,
 * and returns a memory report. Every step lands on a timeline with the process memory at that moment.
 *
 * Components can run on a GPU (`pipe.to("cuda", "transformer")`, or `device: "cuda"` when loading). From the
 * first one on, the timeline also records this process's GPU memory (nvidia-smi) at each event and its sampled
 * peak during each run, and the report gives per component the GPU memory it took when it was put there.
 */
import { MemoryReport, MemoryTimeline, type ComponentMemory, type ComponentMemorySource, type MemoryEvent } from "../memory/report";
import { GpuPeakSampler, gpuProcessMemory, processMemory, resetPeak, type GpuProcessMemory } from "../memory/probes";
import type { OrtModel } from "../models/model";
import { parseDevice, type Device } from "../onnx/device";
import { registerMemoryHost } from "../runtime/memory-hosts";

export type ModelName = "textEncoder" | "transformer" | "vae";
export const MODEL_NAMES: readonly ModelName[] = ["textEncoder", "transformer", "vae"];

/** Lifecycle misuse: removing what is already gone, flushing or removing during a run. */
export class ComponentStateError extends Error {
  override name = "ComponentStateError";
}

/** A component the call needs was left out or removed. */
export class ComponentMissingError extends Error {
  override name = "ComponentMissingError";
  constructor(readonly component: string, purpose: string) {
    super(`pipe.${component} is not loaded but is needed ${purpose}; load it with \`await pipe.load("${component}")\` ` +
      "(or pass it to PixArtSigmaPipeline.fromPretrained)");
  }
}

export abstract class ComponentHost<M extends Record<ModelName, OrtModel | null>> {
  /** Lifecycle events with the process memory at each. */
  readonly timeline = new MemoryTimeline();
  protected readonly models: M;
  private readonly pendingReleases: Promise<void>[] = [];
  private readonly activationPeaks = new Map<string, number>();
  private readonly gpuAtLoad = new Map<string, number>();
  private readonly gpuActivationPeaks = new Map<string, number>();
  /** Set once a component has been on a GPU: from then on events carry GPU readings. */
  private gpuTracking = false;
  private running = 0;
  /** How GPU memory is read (nvidia-smi); replaceable, e.g. by tests on machines without a GPU. */
  gpuProbe: { now(): GpuProcessMemory | null; sampler(): GpuPeakSampler } = { now: gpuProcessMemory, sampler: () => new GpuPeakSampler() };

  protected constructor(models: M) {
    this.models = models;
    // `delete pipe.transformer` must release the session, which only a Proxy can observe; reads and writes of
    // the model properties go through it too, so the three ways of removing a model behave the same.
    const isModel = (prop: string | symbol): prop is ModelName => typeof prop === "string" && (MODEL_NAMES as readonly string[]).includes(prop);
    const proxy = new Proxy(this, {
      get(target, prop, receiver) {
        return isModel(prop) ? target.models[prop] : Reflect.get(target, prop, receiver);
      },
      set(target, prop, value, receiver) {
        if (!isModel(prop)) return Reflect.set(target, prop, value, receiver);
        target.setModel(prop, value);
        return true;
      },
      deleteProperty(target, prop) {
        if (!isModel(prop)) return Reflect.deleteProperty(target, prop);
        target.unload(prop);
        return true;
      },
      has(target, prop) {
        return isModel(prop) ? target.models[prop] !== null : Reflect.has(target, prop);
      },
    });
    // The kernel's memory panel lists live pipelines from this registry (weakly held).
    registerMemoryHost(proxy);
    return proxy;
  }

  /** The pipeline's name in the kernel's memory panel. */
  get memoryLabel(): string {
    return "pipeline";
  }

  /** Loads a model from the pipeline's folder. */
  abstract load(name: ModelName): Promise<void>;

  /** Removes a model and starts releasing its session; `flush()` waits for the release to finish. */
  unload(name: ModelName): void {
    this.checkName(name);
    const model = this.models[name];
    if (!model) throw new ComponentStateError(`pipe.${name} is already removed (nothing to delete); load it again with \`await pipe.load("${name}")\``);
    this.checkIdle(`remove pipe.${name}`);
    this.models[name] = null as M[ModelName];
    this.pendingReleases.push(model.release());
    this.activationPeaks.delete(name);
    this.gpuAtLoad.delete(name);
    this.gpuActivationPeaks.delete(name);
    this.record("delete", `delete ${name}`, { component: name });
  }

  /**
   * Moves components to a device, diffusers' `pipe.to("cuda")` one component at a time: `await pipe.to("cuda",
   * "transformer")` in one cell, `await pipe.to("cpu", "transformer")` in a later one. Without names, every loaded
   * model moves. Each move makes a session on the new device and releases the old one (see OrtModel.to).
   */
  async to(device: Device, ...names: ModelName[]): Promise<this> {
    const target = parseDevice(device, "device");
    names.forEach((n) => this.checkName(n));
    const which = names.length > 0 ? names : MODEL_NAMES.filter((n) => this.models[n]);
    this.checkIdle(`move components to ${device}`);
    for (const name of which) {
      const model = this.models[name];
      if (!model) throw new ComponentMissingError(name, `to move it to ${device}`);
      if (model.device === device) continue;
      const before = target.kind === "cuda" ? this.gpuReading() : undefined;
      await this.busy(() => model.to(device));
      this.gpuAtLoad.delete(name);
      this.gpuActivationPeaks.delete(name);
      this.loaded(name, before, `move ${name} to ${device}`);
    }
    return this;
  }

  /**
   * Finishes pending releases, runs the garbage collector (when node runs with --expose-gc) and returns
   * where the memory is now.
   */
  async flush(): Promise<MemoryReport> {
    this.checkIdle("flush()");
    const results = await Promise.allSettled(this.pendingReleases.splice(0));
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) {
      gc();
      gc();
    }
    this.record("flush", gc ? "flush (gc)" : "flush (no --expose-gc: garbage collection left to V8)");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason), "flush(): releasing a session failed");
    return this.memoryReport();
  }

  /** Per-component weights, mapped residency and activation peaks, the process totals and the timeline. */
  memoryReport(options: { gpu?: boolean } = {}): MemoryReport {
    const gpu = options.gpu || this.gpuTracking;
    return MemoryReport.collect(this.memorySources(), this.timeline.events, gpu ? { gpuMemory: this.gpuProbe.now() } : {});
  }

  /**
   * The report's components and the timeline, without probing the GPU (nvidia-smi takes tens of milliseconds of the
   * event loop): what the kernel's memory panel polls.
   */
  memorySnapshot(): { components: ComponentMemory[]; events: readonly MemoryEvent[] } {
    return { components: MemoryReport.collect(this.memorySources(), [], { gpuMemory: null }).components, events: this.timeline.events };
  }

  private memorySources(): Array<ComponentMemorySource & { loaded: boolean }> {
    return MODEL_NAMES.map((name) => {
      const model = this.models[name];
      const source: ComponentMemorySource & { loaded: boolean } = { name, loaded: model !== null };
      if (model) {
        source.weightBytes = model.weightBytes;
        source.weightFiles = model.weightFiles;
        source.device = model.device;
      }
      const peak = this.activationPeaks.get(name);
      if (peak !== undefined) source.activationPeak = peak;
      const gpuBytes = this.gpuAtLoad.get(name);
      if (gpuBytes !== undefined) source.gpuBytes = gpuBytes;
      const gpuPeak = this.gpuActivationPeaks.get(name);
      if (gpuPeak !== undefined) source.gpuActivationPeak = gpuPeak;
      return source;
    });
  }

  /** Replaces or removes a model (the property setters). */
  protected setModel<N extends ModelName>(name: N, value: M[N] | null | undefined): void {
    if (value === null || value === undefined) {
      this.unload(name);
      return;
    }
    this.checkIdle(`replace pipe.${name}`);
    const old = this.models[name];
    if (old && old !== value) this.pendingReleases.push(old.release());
    this.models[name] = value;
    this.gpuAtLoad.delete(name);
    this.gpuActivationPeaks.delete(name);
    this.loaded(name, undefined, `set ${name}`);
  }

  /**
   * This process's GPU memory now, when a component is or is about to be on a GPU (call before loading one there,
   * and pass the reading to `loaded`). Undefined otherwise or without a driver.
   */
  protected gpuReading(goingToGpu = true): number | undefined {
    if (!goingToGpu && !this.gpuTracking) return undefined;
    return this.gpuProbe.now()?.usedBytes;
  }

  /** Records a load on the timeline; `gpuBefore` (from gpuReading) gives the component's GPU memory. */
  protected loaded(name: ModelName, gpuBefore?: number, label = `load ${name}`): void {
    const model = this.models[name];
    if (model && model.device !== "cpu") this.gpuTracking = true;
    const event = this.record("load", label, { component: name });
    if (gpuBefore !== undefined && event.gpuUsed !== undefined && model && model.device !== "cpu") {
      this.gpuAtLoad.set(name, Math.max(0, event.gpuUsed - gpuBefore));
    }
  }

  /** A timeline event, with this process's GPU memory once GPU tracking is on. */
  private record(kind: MemoryEvent["kind"], label: string, extra: Partial<MemoryEvent> = {}): MemoryEvent {
    const gpuUsed = this.gpuTracking ? this.gpuProbe.now()?.usedBytes : undefined;
    return this.timeline.record(kind, label, { ...extra, ...(gpuUsed === undefined ? {} : { gpuUsed }) });
  }

  /** Marks the pipeline busy while `work` runs, so components cannot be removed or flushed under it. */
  protected async busy<T>(work: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
    }
  }

  /** Runs one pipeline stage (busy) and records it on the timeline with its peak memory. */
  protected async stage<T>(label: string, component: ModelName | undefined, work: () => Promise<T>): Promise<T> {
    const before = processMemory().rss;
    const canTrackPeak = resetPeak();
    const gpuBefore = this.gpuReading(false);
    const sampler = gpuBefore === undefined ? undefined : this.gpuProbe.sampler().start();
    const start = Date.now();
    try {
      return await this.busy(work);
    } finally {
      const durationMs = Date.now() - start;
      const peak = canTrackPeak ? processMemory().rssPeak : undefined;
      if (component && peak !== undefined) this.activationPeaks.set(component, Math.max(0, peak - before));
      const gpuPeak = (await sampler?.stop())?.peak;
      if (component && gpuPeak !== undefined && gpuBefore !== undefined) this.gpuActivationPeaks.set(component, Math.max(0, gpuPeak - gpuBefore));
      this.record("run", label, { ...(component ? { component } : {}), ...(peak === undefined ? {} : { peakDuring: peak }), durationMs,
        ...(gpuPeak === undefined ? {} : { gpuPeakDuring: gpuPeak }) });
    }
  }

  private checkIdle(what: string): void {
    if (this.running > 0) throw new ComponentStateError(`cannot ${what} while the pipeline is running; wait for the call to finish (or abort it)`);
  }

  private checkName(name: string): void {
    if (!(MODEL_NAMES as readonly string[]).includes(name)) {
      throw new ComponentStateError(`unknown component "${name}"; expected one of ${MODEL_NAMES.join(", ")}`);
    }
  }
}
