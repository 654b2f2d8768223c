/**
 * Test-only helpers for crafting (bad) safetensors files and checkpoint folders in a temp folder.
 * Valid files come from the real writer (src/io/safetensors-writer); bad ones are made by editing bytes.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** A fresh folder under the OS temp dir; remove it with `removeTempDir`. */
export function makeTempDir(prefix = "pixart-io-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Writes `8-byte length | header | data`; `headerLength` overrides the length field. */
export function writeRawSafetensors(
  file: string,
  header: string | object,
  data: Uint8Array = new Uint8Array(0),
  headerLength?: bigint,
): void {
  const text = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(text.length));
  fs.writeFileSync(file, Buffer.concat([len, text, data]));
}

/** Reads a file's header JSON, lets `edit` change it, and rewrites the file with the same data bytes. */
export function editHeader(file: string, edit: (header: Record<string, any>) => void): void {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, any>;
  edit(header);
  writeRawSafetensors(file, header, bytes.subarray(8 + n));
}

/** Mkdir -p then write. */
export function writeFile(file: string, content: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

/**
 * Asserts that `promise` rejects with an instance of `cls` whose message contains every string in
 * `mentions` (the file and the tensor/field it is about). Returns the error for further checks.
 */
export async function rejectsWith<T extends Error>(
  promise: Promise<unknown> | (() => unknown),
  cls: new (...args: any[]) => T,
  mentions: readonly string[],
): Promise<T> {
  let error: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (e) {
    error = e;
  }
  assert.ok(error !== undefined, `expected a ${cls.name}, but nothing was thrown`);
  assert.ok(error instanceof cls, `expected a ${cls.name}, got ${String(error)}`);
  assert.strictEqual(error.name, cls.name);
  for (const m of mentions) assert.ok(error.message.includes(m), `message should mention ${JSON.stringify(m)}: ${error.message}`);
  return error;
}
