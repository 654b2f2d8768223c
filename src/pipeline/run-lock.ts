/**
 * One run at a time per pipeline. The scheduler is stateful (its timesteps and multistep history belong to
 * one denoising loop), so two overlapping `call()`s on one pipeline would interleave their steps. Later runs
 * wait in a first-in-first-out queue; `wait: false` makes them fail at once instead.
 */

/** A run was asked not to wait (`wait: false`) while another run held the pipeline. */
export class PipelineBusyError extends Error {
  override name = "PipelineBusyError";
  constructor(readonly operation: string, readonly running: string) {
    super(`${operation}: the pipeline is busy with ${running} and wait: false was given; ` +
      "await the running call first, or leave wait at its default (true) to queue behind it");
  }
}

interface Waiter {
  operation: string;
  grant: () => void;
}

export class RunLock {
  private holder: string | undefined;
  private readonly queue: Waiter[] = [];

  /** What holds the lock now, if anything. */
  get current(): string | undefined {
    return this.holder;
  }

  /** Runs queued behind the current one. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Takes the lock: at once (synchronously) when it is free, else after every earlier holder has released it.
   * With `wait: false` a busy lock throws PipelineBusyError; an aborted `signal` takes a queued request out of
   * the queue (or keeps it out) with the signal's reason. Call the returned function exactly once to release.
   * (Callers take the lock without a wrapping closure so that error stacks keep the caller's frames.)
   */
  acquire(operation: string, options: { wait?: boolean; signal?: AbortSignal } = {}): (() => void) | Promise<() => void> {
    const release = (): void => this.handOver();
    if (this.holder === undefined) {
      // A free lock is taken at once; the work itself checks the signal (so its progress reports where it stopped).
      this.holder = operation;
      return release;
    }
    if (options.wait === false) throw new PipelineBusyError(operation, this.holder);
    return this.enqueue(operation, options.signal).then(() => release);
  }

  /** Runs `work` holding the lock (see `acquire`). */
  async run<T>(operation: string, work: () => Promise<T>, options: { wait?: boolean; signal?: AbortSignal } = {}): Promise<T> {
    const release = await this.acquire(operation, options);
    try {
      return await work();
    } finally {
      release();
    }
  }

  private enqueue(operation: string, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      signal?.throwIfAborted();
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        operation,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private handOver(): void {
    const next = this.queue.shift();
    this.holder = next?.operation;
    next?.grant();
  }
}
