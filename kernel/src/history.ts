/**
 * In-memory input history for history_request (tail, range, search), numbered by execution count. The kernel keeps
 * one session (number 1); history does not survive a restart.
 */

export const historySession = 1;

interface Entry {
  line: number;
  input: string;
  output: string | null;
}

/** [session, line, input] or, with output, [session, line, [input, output]]. */
export type HistoryItem = [number, number, string | [string, string | null]];

export interface HistoryRequest {
  output?: boolean;
  hist_access_type?: string;
  session?: number;
  start?: number;
  stop?: number;
  n?: number | null;
  pattern?: string;
  unique?: boolean;
}

/** Shell-style glob (`*`, `?`, `[...]`) matched against the whole input, like IPython's history search. */
function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "[") {
      const close = pattern.indexOf("]", i + 1);
      if (close < 0) re += "\\[";
      else {
        re += "[" + pattern.slice(i + 1, close).replace(/^!/, "^").replace(/\\/g, "\\\\") + "]";
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export class History {
  private readonly entries: Entry[] = [];

  add(line: number, input: string): void {
    this.entries.push({ line, input, output: null });
  }

  /** The text/plain of the cell's execute_result, stored for `output: true` requests. */
  setOutput(line: number, output: string): void {
    const entry = this.entries.find((e) => e.line === line);
    if (entry) entry.output = output;
  }

  query(req: HistoryRequest): HistoryItem[] {
    return this.select(req).map((e) => [historySession, e.line, req.output ? [e.input, e.output] : e.input]);
  }

  private select(req: HistoryRequest): Entry[] {
    const n = typeof req.n === "number" && req.n >= 0 ? req.n : undefined;
    const last = (list: Entry[]): Entry[] => (n === undefined ? list : n === 0 ? [] : list.slice(-n));
    switch (req.hist_access_type) {
      case "tail":
        return last(this.entries);
      case "range":
        return this.range(req);
      case "search":
        return last(this.search(req.pattern ?? "*", req.unique === true));
      default:
        return [];
    }
  }

  private range(req: HistoryRequest): Entry[] {
    // Session 0 means "the current session", as in IPython; there are no earlier sessions.
    const session = req.session ?? 0;
    if (session !== historySession && session !== 0) return [];
    const start = req.start ?? 1;
    const stop = req.stop ?? Infinity;
    return this.entries.filter((e) => e.line >= start && e.line < stop);
  }

  private search(pattern: string, unique: boolean): Entry[] {
    const re = globToRegExp(pattern);
    const hits = this.entries.filter((e) => re.test(e.input));
    if (!unique) return hits;
    // Keep the latest occurrence of each distinct input, in history order.
    const seen = new Set<string>();
    return hits
      .reverse()
      .filter((e) => !seen.has(e.input) && seen.add(e.input) !== undefined)
      .reverse();
  }
}
