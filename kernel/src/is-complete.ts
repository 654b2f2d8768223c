/**
 * is_complete: whether a console should run the code on Enter ("complete"), wait for more lines ("incomplete", with
 * the indent for the next line), or run it to show the syntax error ("invalid"). Parsed with tslab's TypeScript.
 */
import { createRequire } from "module";
import type * as TS from "@tslab/typescript-for-tslab";

// tslab's TypeScript fork, resolved from tslab's own location so it is the copy tslab compiles cells with.
const ts = createRequire(require.resolve("tslab/package.json"))("@tslab/typescript-for-tslab") as typeof TS;

export type IsCompleteReply = { status: "complete" | "invalid" } | { status: "incomplete"; indent: string };

/** Diagnostics that more input can never fix, even when they sit at the end of the code. */
const fatalAtEnd = new Set([1002 /* Unterminated string literal */]);

function nextIndent(code: string): string {
  const lines = code.split("\n");
  let last = lines.pop() ?? "";
  while (last.trim() === "" && lines.length > 0) last = lines.pop()!;
  const current = /^\s*/.exec(last)![0];
  return /[{([]\s*$/.test(last) ? current + "  " : current;
}

export function isComplete(code: string): IsCompleteReply {
  const sf = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const diagnostics = (sf as unknown as { parseDiagnostics: TS.DiagnosticWithLocation[] }).parseDiagnostics;
  const first = diagnostics[0];
  if (!first) return { status: "complete" };
  const end = code.trimEnd().length;
  const waitsForMore = first.start >= end && !fatalAtEnd.has(first.code);
  // A blank line after unfinished code means "run it anyway", as in IPython.
  if (!waitsForMore || /\n[ \t]*\n\s*$/.test(code)) return { status: "invalid" };
  return { status: "incomplete", indent: nextIndent(code) };
}
