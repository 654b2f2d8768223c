/**
 * Jupyter `error` content (ename, evalue, traceback) for the three ways a cell fails: TypeScript diagnostics, a thrown
 * value, and an interrupt. Stack frames of cell code name the cell, line and column (through the cell's source map);
 * library frames are source-mapped by Node (the kernel runs with --enable-source-maps); kernel, tslab and Node
 * internal frames are dropped.
 */
import * as fs from "fs";
import * as path from "path";
import { inspect } from "util";
import type { Diagnostic } from "tslab/dist/converter";
import { describeCellFrame } from "./cell-locations";
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

/** The kernel's own files, also as Node shows them through source maps (kernel/src/<name>.ts). */
const kernelFiles = new Set(fs.readdirSync(__dirname).filter((f) => f.endsWith(".js")).map((f) => f.slice(0, -3)));
const kernelSourceFrame = /[\\/]kernel[\\/]src[\\/]([\w-]+)\.ts:\d+/;

/** Node's own frames (node:internal, node:events' `Worker.emit` on interrupts, node:vm), tslab's and the kernel's. */
function isInternalFrame(frame: string): boolean {
  if (/\(node:|at node:/.test(frame) || frame.includes(tslabDir) || frame.includes(kernelDir)) return true;
  const m = kernelSourceFrame.exec(frame);
  return m !== null && kernelFiles.has(m[1]!);
}

/** Stack frames without the kernel's; frames in cells name the cell, line and column (cell-locations.ts). */
function frames(stack: string, _cells: readonly CompiledCell[]): string[] {
  const out: string[] = [];
  for (const line of stack.split("\n")) {
    if (!/^\s+at /.test(line) || isInternalFrame(line)) continue;
    const frame = describeCellFrame(line);
    if (!frame) continue;
    // Library objects behind a Proxy (the pipeline's components) print as `Proxy.method`: the method says enough.
    const text = frame.text.replace(/^(\s+at (?:async )?)Proxy\./, "$1");
    out.push(frame.cell ? text.replace(frame.cell.label, cyan(frame.cell.label)) : text);
    const src = frame.cell?.sourceLine?.trim();
    if (src) out.push(`        ${src}`);
  }
  return out;
}

/**
 * What was thrown, in words, without trusting it: a cell may throw a revoked Proxy, a Proxy whose traps throw, or an
 * object whose getters or toString throw. Reading it must never keep the kernel from replying.
 */
function describeThrown(e: unknown): string {
  try {
    return inspect(e, { depth: 2, breakLength: 120 }).slice(0, 2000);
  } catch (inner) {
    let why = "";
    try {
      why = `: ${String((inner as Error)?.message ?? inner)}`.slice(0, 200);
    } catch {
      // the error about the error is hostile too
    }
    return `a value that cannot be inspected (reading it threw${why})`;
  }
}

function nameAndMessage(e: unknown): { name: string; message: string; stack?: string } {
  try {
    return unsafeNameAndMessage(e);
  } catch {
    return { name: "Error", message: `Uncaught ${describeThrown(e)}` };
  }
}

function unsafeNameAndMessage(e: unknown): { name: string; message: string; stack?: string } {
  if (e instanceof Error || (e !== null && typeof e === "object" && "message" in e && "name" in e)) {
    const err = e as Error;
    const stack = err.stack;
    return { name: String(err.name || "Error"), message: String(err.message ?? ""), stack: typeof stack === "string" ? stack : undefined };
  }
  // A thrown non-Error (throw "text", throw 42): there is no name and no stack to show.
  return { name: "Error", message: `Uncaught ${describeThrown(e)}` };
}

export function runtimeErrorContent(e: unknown, cells: readonly CompiledCell[]): ErrorContent {
  const { name, message, stack } = nameAndMessage(e);
  let traceback: string[] = [];
  try {
    traceback = stack ? frames(stack, cells) : [];
  } catch {
    // a stack that cannot be mapped is left out rather than losing the reply
  }
  return { ename: name, evalue: message, traceback: [`${red(name)}: ${message}`, ...traceback] };
}

/** tslab's executor gave up waiting for the cell's promise (the kernel forced the end of an async cell). */
export function isAbandonedCell(e: unknown): boolean {
  return e instanceof Error && e.message === "Interrupted asynchronously";
}

/** True for the errors an interrupt produces inside cell code. */
export function isInterruptError(e: unknown): boolean {
  try {
    return unsafeIsInterruptError(e);
  } catch {
    return false; // a value whose properties throw is no interrupt error of ours
  }
}

function unsafeIsInterruptError(e: unknown): boolean {
  if (e === null || typeof e !== "object") return false;
  const err = e as { code?: unknown; name?: unknown };
  return (
    err.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED" || // SIGINT during synchronous cell code (breakOnSigint)
    err.name === interruptedErrorName || // cooperative: currentCellSignal() aborted with InterruptedError
    isAbandonedCell(e)
  );
}

export function interruptedContent(e: unknown, cells: readonly CompiledCell[], graceMs: number): ErrorContent {
  let stack: string[] = [];
  try {
    stack = e instanceof Error && e.name === interruptedErrorName && e.stack ? frames(e.stack, cells) : [];
  } catch {
    // hostile value: no frames
  }
  const evalue = isAbandonedCell(e)
    ? `the cell was interrupted; it did not stop within ${graceMs} ms, so the kernel stopped waiting for it ` +
      "(work that does not check currentCellSignal() may still be running)"
    : "the cell was interrupted";
  return { ename: interruptedErrorName, evalue, traceback: [`${red(interruptedErrorName)}: ${evalue}`, ...stack] };
}

/** Why the kernel ends when a cell fills the JS heap outside synchronous code (see io-worker.ts); bytes. */
export function heapExhaustedMessage(used: number, limit: number): string {
  const mb = (n: number): string => (n / 2 ** 20).toFixed(0);
  return (
    `the cell filled the JS heap (${mb(used)} MB used; the kernel stops cells at ${mb(limit)} MB, near V8's heap limit) ` +
    "in code that runs after an `await` or in a promise callback, which the kernel cannot stop. The kernel ends now so " +
    "that it can be restarted (Jupyter restarts it by itself); variables are lost. Keep large data out of the JS heap " +
    "(typed arrays, tensors) or process it in parts"
  );
}

function memoryLimitContent(evalue: string): ErrorContent {
  const ename = "MemoryLimitError";
  return { ename, evalue, traceback: [`${red(ename)}: ${evalue}`] };
}

/** The reply of a cell that filled the JS heap where the kernel could not stop it (the kernel ends after it). */
export function heapExhaustedContent(used: number, limit: number): ErrorContent {
  return memoryLimitContent(heapExhaustedMessage(used, limit));
}

/** A cell the I/O worker stopped because the process's memory neared the JS heap limit (see io-worker.ts). */
export function memoryStoppedContent(): ErrorContent {
  return memoryLimitContent(
    "the cell was stopped: the kernel's memory neared the JS heap limit (V8 would have ended the process). " +
      "What the cell stored in top-level names is still referenced; delete or reassign it to free the memory",
  );
}
