/**
 * Config JSON as diffusers and transformers write it. Python's `json` module writes the bare tokens
 * `NaN`, `Infinity` and `-Infinity` for non-finite floats, which `JSON.parse` rejects, so configs are read
 * with this small parser instead: standard JSON plus those three tokens (outside strings only).
 * Syntax errors become a `ConfigError` that names the file, line and column.
 */
import { promises as fsp } from "fs";
import { ConfigError } from "./errors";
import { checkFileContained } from "./paths";

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Deeper nesting than any real config; keeps a hostile file from overflowing the stack. */
const MAX_DEPTH = 512;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERALS: ReadonlyArray<readonly [string, JsonValue]> = [
  ["true", true],
  ["false", false],
  ["null", null],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["-Infinity", -Infinity],
];

class Parser {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  parseDocument(): JsonValue {
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1; // tolerate a UTF-8 BOM
    const value = this.value(0);
    this.skipSpace();
    if (this.pos < this.text.length) this.fail("unexpected text after the JSON value");
    return value;
  }

  private fail(problem: string, at = this.pos): never {
    let line = 1;
    let lineStart = 0;
    for (let i = this.text.indexOf("\n"); i >= 0 && i < at; i = this.text.indexOf("\n", i + 1)) {
      line++;
      lineStart = i + 1;
    }
    throw new ConfigError(this.file, `malformed JSON: ${problem}`, { line, column: at - lineStart + 1 });
  }

  private skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return;
      this.pos++;
    }
  }

  private value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === undefined) this.fail("unexpected end of input, expected a value");
    if (c === "{") return this.object(depth);
    if (c === "[") return this.array(depth);
    if (c === '"') return this.string();
    // Numbers start with a digit or "-"; everything else (and "-Infinity") must be a bare word.
    if ((c !== "-" && (c < "0" || c > "9")) || this.text.startsWith("-Infinity", this.pos)) return this.literal(c);
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (m === null) this.fail(`unexpected character ${JSON.stringify(c)}, expected a value`);
    this.pos += m[0].length;
    return Number(m[0]);
  }

  /** One of the bare words true, false, null, NaN, Infinity or -Infinity at the current position. */
  private literal(c: string): JsonValue {
    for (const [word, value] of LITERALS) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    return this.fail(`unexpected character ${JSON.stringify(c)}, expected a value`);
  }

  private string(): string {
    const start = this.pos;
    let i = start + 1;
    let escaped = false;
    for (;;) {
      const c = this.text.charCodeAt(i);
      if (Number.isNaN(c)) this.fail("unterminated string", start);
      if (c < 0x20) this.fail("control character inside a string", i);
      if (c === 34) break; // closing quote
      if (c === 92) escaped = true;
      i += c === 92 ? 2 : 1; // backslash: skip the escaped character
    }
    this.pos = i + 1;
    if (!escaped) return this.text.slice(start + 1, i);
    try {
      return JSON.parse(this.text.slice(start, this.pos)) as string; // decodes (and checks) the escapes
    } catch {
      return this.fail("invalid escape sequence in a string", start);
    }
  }

  private expect(ch: string, what: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== ch) this.fail(`expected ${what}`);
    this.pos++;
  }

  /** Parses `open item (, item)* close`, calling `item` for each element. */
  private list(close: string, item: () => void): void {
    this.pos++; // opening bracket
    this.skipSpace();
    if (this.text[this.pos] === close) {
      this.pos++;
      return;
    }
    for (;;) {
      item();
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === close) {
        this.pos++;
        return;
      }
      if (c !== ",") this.fail(`expected "," or "${close}"`);
      this.pos++;
    }
  }

  private array(depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    this.list("]", () => out.push(this.value(depth + 1)));
    return out;
  }

  private object(depth: number): JsonObject {
    const out: JsonObject = {};
    this.list("}", () => {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.fail("expected a string key");
      const key = this.string();
      this.expect(":", '":" after a key');
      const value = this.value(depth + 1);
      // A "__proto__" key must become data, not the object's prototype; defineProperty for it alone, because
      // defining every key that way made parsing several times slower.
      if (key === "__proto__") Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    });
    return out;
  }
}

/** Parses JSON text that may contain Python's NaN / Infinity / -Infinity tokens. `file` is for messages. */
export function parsePythonJson(text: string, file: string): JsonValue {
  return new Parser(text, file).parseDocument();
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads and parses a JSON file; a missing or unreadable file is a `ConfigError` naming it, one that resolves out of
 * its folder's containment root (see paths.ts) a `PathEscapeError`.
 */
export async function readJsonFile(file: string): Promise<JsonValue> {
  await checkFileContained(file);
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem = code === "ENOENT" ? "file not found" : `cannot be read (${code ?? String(e)})`;
    throw new ConfigError(file, problem, { cause: e });
  }
  return parsePythonJson(text, file);
}

/** Like `readJsonFile`, but the top level must be an object. */
export async function readJsonObject(file: string): Promise<JsonObject> {
  const value = await readJsonFile(file);
  if (!isJsonObject(value)) {
    throw new ConfigError(file, `expected a JSON object at the top level, found ${jsonTypeName(value)}`);
  }
  return value;
}

export function jsonTypeName(v: JsonValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${typeof v === "string" ? JSON.stringify(v) : String(v)}`;
}
