/**
 * Cooperative interruption for long async work started from a notebook cell (e.g. the denoising loop): the kernel
 * aborts the cell's signal on an interrupt (SIGINT or interrupt_request), and library code checks it between steps.
 * Outside a kernel the signal never aborts.
 */
import { getKernelBridge } from "./display";

/** The reason an interrupted cell's signal carries, and what `throwIfInterrupted` throws. */
export class InterruptedError extends Error {
  override name = "InterruptedError";
  constructor(message = "Interrupted by the user") {
    super(message);
  }
}

const neverAborted = new AbortController().signal;

/**
 * The abort signal of the cell running now (or the last one that ran, for work it left running in the background).
 * Take it once when the work starts, then check it between steps.
 */
export function currentCellSignal(): AbortSignal {
  return getKernelBridge()?.cellSignal() ?? neverAborted;
}

/**
 * Throws if `signal` has been aborted: a fresh InterruptedError for kernel interrupts (so its stack shows where the
 * work stopped, not where the kernel aborted), the reason itself for other Error reasons.
 */
export function throwIfInterrupted(signal: AbortSignal = currentCellSignal()): void {
  if (!signal.aborted) return;
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== "InterruptedError") throw reason;
  throw new InterruptedError(reason instanceof Error ? reason.message : undefined);
}
