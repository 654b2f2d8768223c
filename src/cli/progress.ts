/**
 * A one-line progress bar for the terminal: steps done, step rate and ETA. Writes to stderr so stdout stays
 * clean for piping; falls back to one line per step when stderr is not a terminal.
 */
export class ProgressBar {
  private readonly start = Date.now();
  private readonly tty: boolean;

  constructor(private readonly total: number, private readonly label = "denoising", private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY);
  }

  update(done: number): void {
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = done > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.total - done) / rate : NaN;
    const width = 24;
    const filled = Math.round((done / this.total) * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const speed = rate >= 1 ? `${rate.toFixed(2)} it/s` : rate > 0 ? `${(1 / rate).toFixed(2)} s/it` : "-";
    const line = `${this.label} ${bar} ${done}/${this.total} [${formatSeconds(elapsed)}<${formatSeconds(eta)}, ${speed}]`;
    this.out.write(this.tty ? `\r${line}` : `${line}\n`);
  }

  finish(): void {
    if (this.tty) this.out.write("\n");
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  const sec = Math.round(s - m * 60);
  return m > 0 ? `${m}:${String(sec).padStart(2, "0")}` : `${s.toFixed(1)}s`;
}
