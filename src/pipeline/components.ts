/**
 * Pipeline components you can leave out, load later and take apart cell by cell:
 *
 *   delete pipe.textEncoder;        // or pipe.textEncoder = null, or pipe.unload("textEncoder")
 *   const report = await pipe.flush();
 *
 * Removing a model releases its onnxruntime session at once (a dropped session would keep its memory until
 * V8 collects it); `flush()` waits for those releases, runs the garbage collector when node has --expose-gc,
 * and returns a memory report. Every step lands on a timeline with the process memory at that moment.
 */
import { MemoryReport, MemoryTimeline, type ComponentMemorySource } from "../memory/report";
import { processMemory, resetPeak } from "../memory/probes";
import type { OrtModel } from "../models/model";

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
  private running = 0;

  protected constructor(models: M) {
    this.models = models;
    // `delete pipe.transformer` must release the session, which only a Proxy can observe; reads and writes of
    // the model properties go through it too, so the three ways of removing a model behave the same.
    const isModel = (prop: string | symbol): prop is ModelName => typeof prop === "string" && (MODEL_NAMES as readonly string[]).includes(prop);
    return new Proxy(this, {
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
    this.timeline.record("delete", `delete ${name}`, { component: name });
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
    this.timeline.record("flush", gc ? "flush (gc)" : "flush (no --expose-gc: garbage collection left to V8)");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason), "flush(): releasing a session failed");
    return this.memoryReport();
  }

  /** Per-component weights, mapped residency and activation peaks, the process totals and the timeline. */
  memoryReport(options: { gpu?: boolean } = {}): MemoryReport {
    const sources = MODEL_NAMES.map((name) => {
      const model = this.models[name];
      const source: ComponentMemorySource & { loaded: boolean } = { name, loaded: model !== null };
      if (model) {
        source.weightBytes = model.weightBytes;
        source.weightFiles = model.weightFiles;
      }
      const peak = this.activationPeaks.get(name);
      if (peak !== undefined) source.activationPeak = peak;
      return source;
    });
    return MemoryReport.collect(sources, this.timeline.events, options);
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
    this.timeline.record("load", `set ${name}`, { component: name });
  }

  /** Records a load on the timeline. */
  protected loaded(name: ModelName): void {
    this.timeline.record("load", `load ${name}`, { component: name });
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
    const start = Date.now();
    try {
      return await this.busy(work);
    } finally {
      const peak = canTrackPeak ? processMemory().rssPeak : undefined;
      if (component && peak !== undefined) this.activationPeaks.set(component, Math.max(0, peak - before));
      this.timeline.record("run", label, { ...(component ? { component } : {}), ...(peak === undefined ? {} : { peakDuring: peak }), durationMs: Date.now() - start });
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
