/**
 * Where a running pixart-ts kernel makes itself known to library code: a process-wide registry under
 * `Symbol.for("pixart-ts.kernel")`, so that any layer (and any build of this module) can reach it without
 * importing kernel/. A leaf module: the pipeline reads the cell's abort signal from here, display/ the rest.
 */

/** What every layer may ask of the kernel; display/ extends it with outputs and comms. */
export interface KernelHooks {
  /** The abort signal of the cell that is running (or ran last); aborted by a Jupyter interrupt. */
  cellSignal(): AbortSignal;
}

export interface KernelRegistry<B extends KernelHooks = KernelHooks, T = unknown> {
  bridge?: B;
  /** Comm targets registered before a kernel attached (e.g. at import time in a CLI run); handed over on attach. */
  pendingTargets: Map<string, T>;
}

const registryKey = Symbol.for("pixart-ts.kernel");

export function kernelRegistry<B extends KernelHooks, T>(): KernelRegistry<B, T> {
  const holder = globalThis as unknown as { [registryKey]?: KernelRegistry<B, T> };
  let reg = holder[registryKey];
  if (!reg) {
    reg = { pendingTargets: new Map() };
    holder[registryKey] = reg;
  }
  return reg;
}

/** The running notebook cell's abort signal, or undefined outside a pixart-ts kernel. */
export function kernelCellSignal(): AbortSignal | undefined {
  return kernelRegistry().bridge?.cellSignal();
}

/**
 * `signal.throwIfAborted()` with a fresh error (the reason's name and message, the reason as `cause`) when the reason
 * is an Error: a kernel interrupt's reason is made inside the kernel, so its stack would point there; this one's
 * stack shows where the work stopped and which cell line awaited it.
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  if (!(reason instanceof Error)) throw reason;
  const fresh = new Error(reason.message, { cause: reason });
  fresh.name = reason.name;
  throw fresh;
}
