/**
 * Stack frames in cell code, mapped back to the cell: each cell runs as a script named `<cell N>`, and the runner
 * registers how that script's lines and columns map to the cell's source (cell-converter.ts).
 */
import type { CellLocation } from "./cell-converter";

export interface CellScript {
  executionCount: number | null;
  source: string;
  /** Maps a 0-based line and column of the compiled cell (without the wrapper lines) to the cell. */
  locate: (line: number, column: number) => CellLocation | undefined;
  /** Lines the runner's wrapper puts before the compiled cell. */
  firstLine: number;
}

const scripts = new Map<string, CellScript>();
/** Enough for the frames of any error still on screen; old cells are forgotten first. */
const keptScripts = 500;

export function registerCellScript(filename: string, script: CellScript): void {
  scripts.set(filename, script);
  if (scripts.size > keptScripts) scripts.delete(scripts.keys().next().value!);
}

/** A frame's location in a cell script: `<cell 3>:5:9`. */
const cellLocation = /<cell \d+>:(\d+):(\d+)/;

export interface CellFrame {
  label: string;
  /** The cell's source line, for an excerpt under the frame. */
  sourceLine: string | undefined;
}

function cellLabel(count: number | null): string {
  return count === null ? "cell" : `cell [${count}]`;
}

/**
 * `frame` (one `    at ...` line) with its cell script location replaced by `cell [5], line 2:7`, or undefined when
 * the frame is in the runner's own wrapper (the line that calls the cell), which is not the user's code.
 * Frames that are not in a cell come back unchanged.
 */
export function describeCellFrame(frame: string): { text: string; cell?: CellFrame } | undefined {
  const m = cellLocation.exec(frame);
  if (!m) return { text: frame };
  const file = /<cell \d+>/.exec(m[0])![0];
  const script = scripts.get(file);
  if (!script) return { text: frame };
  const jsLine = Number(m[1]) - 1 - script.firstLine;
  const at = jsLine >= 0 ? script.locate(jsLine, Number(m[2]) - 1) : undefined;
  if (!at) return jsLine < 0 || isWrapperLine(frame) ? undefined : { text: frame.replace(cellLocation, cellLabel(script.executionCount)) };
  const label = `${cellLabel(script.executionCount)}, line ${at.line + 1}:${at.column + 1}`;
  return {
    text: frame.replace(cellLocation, label).replace(/^(\s+at )Object\.<anonymous> /, "$1"),
    cell: { label, sourceLine: script.source.split("\n")[at.line] },
  };
}

/** The wrapper's last line `})(__pixartCell__.exports, ...)` calls the cell function. */
function isWrapperLine(frame: string): boolean {
  return /^\s+at <cell \d+>:/.test(frame.trim() ? frame : "");
}
