/**
 * Jupyter `error` content (ename, evalue, traceback) for the three ways a cell fails: TypeScript diagnostics, a thrown
 * value, and an interrupt. Stack frames of cell code are mapped back to cell lines where the compiled line can be
 * found in the cell's source; kernel and tslab frames are dropped.
 */
import * as path from "path";
import { inspect } from "util";
import type { Diagnostic } from "tslab/dist/converter";
import type { CompiledCell } from "./executor";

export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** The ename of cells rejected by the TypeScript compiler (type or syntax errors). */
export const compileErrorName = "TSError";
/** The ename of interrupted cells (same name as the abort reason in src/display/interrupt.ts). */
export const interruptedErrorName = "InterruptedError";

const red = (s: string): string => `\x1b[31m${s}\x1b[0m`;
const cyan = (s: string): string => `\x1b[36m${s}\x1b[0m`;

function diagnosticLocation(d: Diagnostic): string {
  const where = `${d.start.line + 1}:${d.start.character + 1}`;
  return d.fileName ? `${d.fileName}:${where}` : where;
}

function sourceExcerpt(d: Diagnostic, source: string): string[] {
  if (d.fileName) return [];
  const line = source.split("\n")[d.start.line];
  if (line === undefined) return [];
  const width = d.end.line === d.start.line ? Math.max(1, d.end.character - d.start.character) : 1;
  return [`    ${line}`, `    ${" ".repeat(d.start.character)}${red("~".repeat(width))}`];
}

export function compileErrorContent(diagnostics: Diagnostic[], source: string): ErrorContent {
  const first = diagnostics[0]!;
  const more = diagnostics.length > 1 ? ` (and ${diagnostics.length - 1} more)` : "";
  const traceback = [`${red(compileErrorName)}: TypeScript rejected the cell`];
  for (const d of diagnostics) {
    traceback.push(`${cyan(diagnosticLocation(d))} - error TS${d.code}: ${d.messageText}`, ...sourceExcerpt(d, source));
  }
  return {
    ename: compileErrorName,
    evalue: `${diagnosticLocation(first)} - error TS${first.code}: ${first.messageText}${more}`,
    traceback,
  };
}

const kernelDir = __dirname + path.sep;
const tslabDir = `${path.sep}node_modules${path.sep}tslab${path.sep}`;
const cellFrame = /evalmachine\.<anonymous>:(\d+):(\d+)/;

function isInternalFrame(frame: string): boolean {
  return frame.includes("node:internal") || frame.includes("node:vm") || frame.includes(tslabDir) || frame.includes(kernelDir);
}

/** A compiled line reduced to what the cell's source also contains: no `exports.x = ` prefix, no final `;`. */
function comparableText(jsLine: string): string {
  return jsLine
    .trim()
    .replace(/^exports\.[\w$]+ = /, "")
    .replace(/;$/, "");
}

/** The cell line (1-based) whose text contains compiled line `jsLine` of `cell`, when exactly one does. */
function cellLineFor(cell: CompiledCell, jsLine: number): number | undefined {
  const text = comparableText(cell.js.split("\n")[jsLine - 1] ?? "");
  if (text.length < 3) return undefined;
  const hits = cell.source.split("\n").flatMap((l, i) => (l.includes(text) ? [i + 1] : []));
  return hits.length === 1 ? hits[0] : undefined;
}

/** The line of tslab's wrapper `})(__tslab__.exports, __tslab__.require)` that calls the cell's code. */
function isWrapperCall(cell: CompiledCell | undefined, jsLine: number): boolean {
  return cell !== undefined && jsLine === cell.js.split("\n").length + 1;
}

function describeCellFrame(jsLine: number, cells: readonly CompiledCell[]): string {
  for (const cell of cells) {
    const line = cellLineFor(cell, jsLine);
    if (line !== undefined) {
      const label = cell.executionCount !== null ? `cell [${cell.executionCount}]` : "cell";
      return `${label}, line ${line}`;
    }
  }
  return `compiled cell code, line ${jsLine}`;
}

function frames(stack: string, cells: readonly CompiledCell[]): string[] {
  return stack
    .split("\n")
    .filter((l) => /^\s+at /.test(l) && !isInternalFrame(l))
    .filter((l) => {
      const m = cellFrame.exec(l);
      return !(m && /^\s+at evalmachine/.test(l) && isWrapperCall(cells[0], Number(m[1])));
    })
    .map((l) => l.replace(cellFrame, (_m, jsLine: string) => cyan(describeCellFrame(Number(jsLine), cells))));
}

function nameAndMessage(e: unknown): { name: string; message: string; stack?: string } {
  if (e instanceof Error || (e !== null && typeof e === "object" && "message" in e && "name" in e)) {
    const err = e as Error;
    return { name: String(err.name || "Error"), message: String(err.message ?? ""), stack: err.stack };
  }
  // A thrown non-Error (throw "text", throw 42): there is no name and no stack to show.
  return { name: "Error", message: `Uncaught ${inspect(e)}` };
}

export function runtimeErrorContent(e: unknown, cells: readonly CompiledCell[]): ErrorContent {
  const { name, message, stack } = nameAndMessage(e);
  return {
    ename: name,
    evalue: message,
    traceback: [`${red(name)}: ${message}`, ...(stack ? frames(stack, cells) : [])],
  };
}

/** tslab's executor gave up waiting for the cell's promise (the kernel forced the end of an async cell). */
export function isAbandonedCell(e: unknown): boolean {
  return e instanceof Error && e.message === "Interrupted asynchronously";
}

/** True for the errors an interrupt produces inside cell code. */
export function isInterruptError(e: unknown): boolean {
  if (e === null || typeof e !== "object") return false;
  const err = e as { code?: unknown; name?: unknown };
  return (
    err.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED" || // SIGINT during synchronous cell code (breakOnSigint)
    err.name === interruptedErrorName || // cooperative: currentCellSignal() aborted with InterruptedError
    isAbandonedCell(e)
  );
}

export function interruptedContent(e: unknown, cells: readonly CompiledCell[], graceMs: number): ErrorContent {
  const stack = e instanceof Error && e.name === interruptedErrorName && e.stack ? frames(e.stack, cells) : [];
  const evalue = isAbandonedCell(e)
    ? `the cell was interrupted; it did not stop within ${graceMs} ms, so the kernel stopped waiting for it ` +
      "(work that does not check currentCellSignal() may still be running)"
    : "the cell was interrupted";
  return { ename: interruptedErrorName, evalue, traceback: [`${red(interruptedErrorName)}: ${evalue}`, ...stack] };
}
