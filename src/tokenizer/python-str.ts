/**
 * Python's `str.lower()` and `str.strip()`, reproduced exactly (for Python 3.11's Unicode 14 tables), because
 * JavaScript's differ: `toLowerCase` follows Node's newer Unicode version, and `trim` removes U+FEFF but keeps
 * U+001C..U+001F and U+0085, which Python strips.
 */
import { LOWER_MULTI, LOWER_RUNS, PYTHON_SPACE } from "./python-str-tables";

let lowerMap: Map<number, string> | undefined;
function lowerTable(): Map<number, string> {
  if (lowerMap) return lowerMap;
  lowerMap = new Map();
  for (const [first, last, delta, step] of LOWER_RUNS) {
    for (let cp = first; cp <= last; cp += step) lowerMap.set(cp, String.fromCodePoint(cp + delta));
  }
  for (const [cp, s] of LOWER_MULTI) lowerMap.set(cp, s);
  return lowerMap;
}

const ASCII = /^[\x00-\x7f]*$/;
const CAPITAL_SIGMA = 0x3a3;
const CASED = /\p{Cased}/u;
const CASE_IGNORABLE = /\p{Case_Ignorable}/u;

/**
 * Python's final-sigma rule: U+03A3 lowercases to "ς" when preceded by a cased letter (skipping
 * case-ignorable ones) and not followed by one (skipping case-ignorable ones), else to "σ". The Cased and
 * Case_Ignorable properties come from the JavaScript engine (its Unicode version may be newer than Python's).
 */
function isFinalSigma(cps: readonly number[], i: number): boolean {
  let j = i - 1;
  while (j >= 0 && CASE_IGNORABLE.test(String.fromCodePoint(cps[j]!))) j--;
  if (j < 0 || !CASED.test(String.fromCodePoint(cps[j]!))) return false;
  let k = i + 1;
  while (k < cps.length && CASE_IGNORABLE.test(String.fromCodePoint(cps[k]!))) k++;
  return k === cps.length || !CASED.test(String.fromCodePoint(cps[k]!));
}

/** Python's `str.lower()`. */
export function pythonLower(text: string): string {
  if (ASCII.test(text)) return text.toLowerCase();
  const table = lowerTable();
  const cps = Array.from(text, (c) => c.codePointAt(0)!);
  let out = "";
  cps.forEach((cp, i) => {
    if (cp === CAPITAL_SIGMA) out += isFinalSigma(cps, i) ? "\u03c2" : "\u03c3";
    else out += table.get(cp) ?? String.fromCodePoint(cp);
  });
  return out;
}

const SPACE = new Set(PYTHON_SPACE);
function isPythonSpace(unit: number): boolean {
  // Every Python whitespace code point is in the BMP, so UTF-16 units can be tested directly.
  return SPACE.has(unit);
}

/** Python's `str.strip()` (no argument: removes `str.isspace()` characters at both ends). */
export function pythonStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isPythonSpace(text.charCodeAt(start))) start++;
  while (end > start && isPythonSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}
