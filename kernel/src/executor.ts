/**
 * Runs cells with tslab's TypeScript converter (TS 5.0 fork: type check, declarations carried between cells, imports,
 * local .ts modules) and the project's cell runner (cell-runner.ts, in place of tslab's executor), and turns the
 * result into structured outcomes: the last expression's value, the thrown error, or the compiler diagnostics.
 */
import { CompletionInfo, Diagnostic } from "tslab/dist/converter";
import { printQuickInfo } from "tslab/dist/inspect";
import { CellRunner } from "./cell-runner";

export type CellOutcome =
  | { status: "ok"; hasValue: false }
  | { status: "ok"; hasValue: true; value: unknown }
  | { status: "error"; error: unknown }
  | { status: "compile-error"; diagnostics: Diagnostic[] };

/** The source of a cell and the JavaScript tslab ran for it, kept to map stack frames back to cell lines. */
export interface CompiledCell {
  executionCount: number | null;
  source: string;
  js: string;
}

/** Where a cell is: tslab compiles it, then runs its synchronous part, then (for async cells) awaits the rest. */
export type ExecutionPhase = "compiling" | "running-sync" | "idle";

export interface CellExecutorOptions {
  /** Module resolution and local .ts imports are relative to this directory (the notebook's). */
  rootDir: string;
  /** Where tslab's other console output goes (diagnostics of `//%module` cells). */
  writeStderr: (text: string) => void;
  /** Told when a cell's compilation starts, when its synchronous code starts, and when both are over. */
  onPhase?: (phase: ExecutionPhase) => void;
}

export interface CompletionResult extends CompletionInfo {
  /** TypeScript's kind per candidate (e.g. "method", "property"), for the frontend's icons. */
  kinds: Map<string, string>;
}

export class CellExecutor {
  private readonly runner: CellRunner;
  private readonly history: CompiledCell[] = [];
  private static readonly keptCells = 100;

  constructor(private readonly options: CellExecutorOptions) {
    this.runner = new CellRunner(options.rootDir);
  }

  /** Creates the TypeScript program now (about a second) rather than at the first cell. */
  warmUp(): void {
    void this.runner.converter.tslab;
  }

  /** The names cells have defined, with their values (tslab's `exports`). */
  get locals(): Record<string, unknown> {
    return this.runner.exports;
  }

  async run(code: string, executionCount: number | null): Promise<CellOutcome> {
    this.options.onPhase?.("compiling");
    let running: ReturnType<CellRunner["run"]>;
    try {
      // run() compiles and runs the synchronous part of the cell before it returns its promise.
      running = this.runner.run(code, executionCount, (sync) => this.options.onPhase?.(sync ? "running-sync" : "idle"));
    } finally {
      this.options.onPhase?.("idle");
    }
    const result = await running;
    const converted = result.converted;
    if (converted?.output) this.remember({ executionCount, source: code, js: converted.output });
    if (result.status === "compile-error") return { status: "compile-error", diagnostics: result.converted.diagnostics };
    if (result.status === "error") return { status: "error", error: result.error };
    return result.value ? { status: "ok", hasValue: true, value: result.value.value } : { status: "ok", hasValue: false };
  }

  private remember(cell: CompiledCell): void {
    this.history.push(cell);
    if (this.history.length > CellExecutor.keptCells) this.history.shift();
  }

  /** Compiled cells, newest first. */
  compiledCells(): readonly CompiledCell[] {
    return [...this.history].reverse();
  }

  /** Stops the pending await of an async cell (the cell's promise is abandoned, not cancelled). */
  interrupt(): void {
    this.runner.interrupt();
  }

  complete(code: string, cursor: number): CompletionResult {
    const info = this.runner.converter.tslab.complete(this.runner.prevDecl, code, cursor);
    const kinds = new Map<string, string>();
    for (const entry of info.original?.entries ?? []) kinds.set(entry.name, String(entry.kind));
    return { ...info, kinds };
  }

  /** Hover text (signature and docs) for the symbol at `cursor`, or undefined. */
  inspect(code: string, cursor: number): string | undefined {
    const info = this.runner.converter.tslab.inspect(this.runner.prevDecl, code, cursor);
    return info ? printQuickInfo(info) : undefined;
  }

  close(): void {
    this.runner.close();
  }
}
