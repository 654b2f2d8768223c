/**
 * Runs cells with tslab's TypeScript converter and executor (TS 5.0 fork, top-level await, imports, local .ts modules)
 * and turns what tslab prints into structured outcomes: the last expression's value, the thrown error, or the
 * compiler diagnostics. tslab reports those through the `console` object it is given, and its converter is reached
 * through the ConverterSet we hand it, so no tslab file is patched.
 */
import { format } from "util";
import { Converter, ConvertResult, createConverter, Diagnostic, CompletionInfo } from "tslab/dist/converter";
import { ConverterSet, createExecutor, Executor } from "tslab/dist/executor";
import { printQuickInfo } from "tslab/dist/inspect";

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

/** A ConverterSet whose Node converter remembers its last result (tslab only prints diagnostics). */
class RecordingConverters implements ConverterSet {
  last: ConvertResult | undefined;
  /** Called after each convert(): tslab runs the code right after it. */
  afterConvert: () => void = () => {};
  private nodeConverter: Converter | undefined;
  private browserConverter: Converter | undefined;

  get node(): Converter {
    this.nodeConverter ??= this.recording(createConverter({ isJS: false, isBrowser: false }));
    return this.nodeConverter;
  }

  get browser(): Converter {
    this.browserConverter ??= createConverter({ isJS: false, isBrowser: true });
    return this.browserConverter;
  }

  private recording(conv: Converter): Converter {
    return {
      convert: (prevDecl, src) => {
        this.last = conv.convert(prevDecl, src);
        this.afterConvert();
        return this.last;
      },
      inspect: (prevDecl, src, position) => conv.inspect(prevDecl, src, position),
      complete: (prevDecl, src, position) => conv.complete(prevDecl, src, position),
      addModule: (name, content, meta) => conv.addModule(name, content, meta),
      close: () => conv.close(),
    };
  }

  close(): void {
    this.nodeConverter?.close();
    this.browserConverter?.close();
  }
}

export interface CompletionResult extends CompletionInfo {
  /** TypeScript's kind per candidate (e.g. "method", "property"), for the frontend's icons. */
  kinds: Map<string, string>;
}

export class CellExecutor {
  private readonly converters = new RecordingConverters();
  private readonly executor: Executor;
  private value: { value: unknown } | undefined;
  private errors: unknown[] = [];
  private readonly history: CompiledCell[] = [];
  private static readonly keptCells = 100;

  constructor(private readonly options: CellExecutorOptions) {
    this.converters.afterConvert = () => options.onPhase?.("running-sync");
    this.executor = createExecutor(options.rootDir, this.converters, {
      log: (value: unknown) => {
        this.value = { value };
      },
      error: (...args: unknown[]) => this.onError(args),
    });
  }

  /** Creates the TypeScript program now (about a second) rather than at the first cell. */
  warmUp(): void {
    void this.converters.node;
  }

  private onError(args: unknown[]): void {
    // printDiagnostics calls error("%s%d:%d - %s", ...); the structured diagnostics come from the converter instead.
    if (typeof args[0] === "string" && args.length > 1) {
      if (!this.converters.last?.diagnostics.length) this.options.writeStderr(format(...args) + "\n");
      return;
    }
    this.errors.push(args[0]);
  }

  async run(code: string, executionCount: number | null): Promise<CellOutcome> {
    this.value = undefined;
    this.errors = [];
    this.converters.last = undefined;
    // execute() compiles and runs the synchronous part of the cell before it returns its promise.
    this.options.onPhase?.("compiling");
    let executing: Promise<boolean>;
    try {
      executing = this.executor.execute(code);
    } finally {
      this.options.onPhase?.("idle");
    }
    const ok = await executing;
    const converted = this.converters.last as ConvertResult | undefined;
    if (converted?.output) this.remember({ executionCount, source: code, js: converted.output });
    if (converted && converted.diagnostics.length > 0) return { status: "compile-error", diagnostics: converted.diagnostics };
    if (!ok || this.errors.length > 0) return { status: "error", error: this.errors[0] };
    const captured = this.value as { value: unknown } | undefined; // set by the log callback during execute()
    return captured ? { status: "ok", hasValue: true, value: captured.value } : { status: "ok", hasValue: false };
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
    this.executor.interrupt();
  }

  complete(code: string, cursor: number): CompletionResult {
    const info = this.executor.complete(code, cursor);
    const kinds = new Map<string, string>();
    for (const entry of info.original?.entries ?? []) kinds.set(entry.name, String(entry.kind));
    return { ...info, kinds };
  }

  /** Hover text (signature and docs) for the symbol at `cursor`, or undefined. */
  inspect(code: string, cursor: number): string | undefined {
    const info = this.executor.inspect(code, cursor);
    return info ? printQuickInfo(info) : undefined;
  }

  close(): void {
    this.executor.close();
  }
}
