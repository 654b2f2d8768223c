/**
 * Terminal progress for the CLI, on stderr so stdout stays clean for piping: one line per stage (load, encode,
 * denoise, decode) with its time, and a step bar while denoising.
 *
 * On a terminal the bar redraws one line in place (clearing to the end of the line, so a shorter line leaves no
 * tail behind) and is finished before anything else is printed. Off a terminal (a pipe, a CI log) it writes a
 * line at most every `pipeIntervalMs` and always the last one, instead of one line per step.
 */

import type { ProgressListener } from "../runtime/progress";

/** Where progress goes: a stream and whether it is a terminal. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

const CLEAR_TO_END = "\x1b[K";

export class ProgressBar {
  private readonly start = Date.now();
  private readonly tty: boolean;
  private lastPrint = -Infinity;
  private open = false;
  private lastDone = -1;
  private lastPrintedDone = -1;

  constructor(private readonly total: number, private readonly label = "denoise", private readonly out: ProgressStream = process.stderr,
    private readonly pipeIntervalMs = 2000) {
    this.tty = Boolean(out.isTTY);
  }

  update(done: number, now = Date.now()): void {
    this.lastDone = done;
    if (!this.tty && done < this.total && now - this.lastPrint < this.pipeIntervalMs) return;
    this.print(done, now);
  }

  private print(done: number, now: number): void {
    this.lastPrint = now;
    this.lastPrintedDone = done;
    const line = this.line(done, now);
    if (this.tty) {
      this.out.write(`\r${line}${CLEAR_TO_END}`);
      this.open = true;
    } else {
      this.out.write(`${line}\n`);
    }
  }

  /** Ends the bar's line (on success or before an error is printed); safe to call twice. */
  finish(): void {
    // Off a terminal, the last step seen may have been throttled away: print it, so the log says where it ended.
    if (!this.tty && this.lastDone >= 0 && this.lastDone !== this.lastPrintedDone) this.print(this.lastDone, Date.now());
    if (this.open) this.out.write("\n");
    this.open = false;
  }

  private line(done: number, now: number): string {
    const elapsed = (now - this.start) / 1000;
    const rate = done > 0 && elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.total - done) / rate : NaN;
    const width = 24;
    const filled = Math.min(width, Math.round((done / this.total) * width));
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const speed = rate >= 1 ? `${rate.toFixed(2)} it/s` : rate > 0 ? `${(1 / rate).toFixed(2)} s/it` : "-";
    return `${this.label} ${bar} ${done}/${this.total} [${formatSeconds(elapsed)}<${formatSeconds(eta)}, ${speed}]`;
  }
}

/**
 * Stage lines from the pipeline's progress events (runtime/progress.ts): "load transformer …" while a stage runs
 * (on a terminal), "load transformer 1.2s" when it ends, "denoise (20 steps) failed after 3.4s" when it throws, and
 * the step bar in between for the denoise stage. `listener` is what the CLI passes as the pipeline's `progress`.
 */
export class StageProgress {
  private readonly tty: boolean;
  private bar: ProgressBar | undefined;

  constructor(private readonly out: ProgressStream = process.stderr) {
    this.tty = Boolean(out.isTTY);
  }

  readonly listener: ProgressListener = (event) => {
    if (event.type === "stage-start") this.start(event.label, event.totalSteps);
    else if (event.type === "step") this.bar?.update(event.step);
    else if (event.type === "stage-end") this.end(event.label, event.durationMs, event.error);
  };

  private start(label: string, totalSteps: number | undefined): void {
    this.finishBar();
    if (totalSteps !== undefined) this.bar = new ProgressBar(totalSteps, "denoise", this.out);
    else if (this.tty) this.out.write(`${label} …${CLEAR_TO_END}`);
  }

  private end(label: string, durationMs: number, error: string | undefined): void {
    this.finishBar();
    const time = formatSeconds(durationMs / 1000);
    this.out.write(`${this.tty ? `\r${CLEAR_TO_END}` : ""}${label} ${error === undefined ? time : `failed after ${time}`}\n`);
  }

  /** Finishes an open step bar (before an error or the next line is printed). */
  finishBar(): void {
    this.bar?.finish();
    this.bar = undefined;
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  const sec = Math.round(s - m * 60);
  return m > 0 ? `${m}:${String(sec).padStart(2, "0")}` : `${s.toFixed(1)}s`;
}
