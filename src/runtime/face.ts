/**
 * Short text faces (`util.inspect` / `console.log` / a notebook's last expression) for the library's big objects,
 * which otherwise print hundreds of lines of sessions and tables. Each face is at most ~15 lines; the full dump is
 * `inspect(x)` from display/faces.ts. A leaf module: classes of every layer import it.
 */
import { inspect } from "util";

/** The symbol `util.inspect` calls for an object's own text. */
export const inspectCustom: typeof inspect.custom = inspect.custom;

/** `key value` pairs joined with " · " into lines of at most `width` characters. */
export function wrapPairs(pairs: ReadonlyArray<readonly [string, unknown]>, indent: string, width = 96): string[] {
  const lines: string[] = [];
  let line = "";
  for (const [k, v] of pairs) {
    const item = `${k} ${typeof v === "string" ? v : inspect(v, { breakLength: Infinity, maxArrayLength: 4 })}`;
    if (line && indent.length + line.length + 3 + item.length > width) {
      lines.push(indent + line);
      line = item;
    } else {
      line = line ? `${line} · ${item}` : item;
    }
  }
  if (line) lines.push(indent + line);
  return lines;
}

/** The primitive entries of a config object (arrays of up to 8 numbers too), skipping undefined and null. */
export function configPairs(config: object, skip: ReadonlySet<string> = new Set()): Array<[string, unknown]> {
  return Object.entries(config).filter(([k, v]) => {
    if (skip.has(k) || v === undefined || v === null) return false;
    if (Array.isArray(v)) return v.length <= 8 && v.every((x) => typeof x === "number" || typeof x === "string");
    return typeof v !== "object" && typeof v !== "function";
  });
}

/** A list of numbers shortened to its first and last items: `[999, 949, 899, …, 49] (20)`. */
export function shortList(values: readonly number[], keep = 3): string {
  if (values.length <= keep * 2) return `[${values.join(", ")}]`;
  return `[${values.slice(0, keep).join(", ")}, …, ${values.slice(-keep).join(", ")}] (${values.length})`;
}
