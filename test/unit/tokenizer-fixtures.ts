/** Reading the tokenizer reference fixtures written by tools/reference/tokenizer.py (gzipped to save space). */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { gunzipSync } from "zlib";
import { fixturesDir } from "../helpers/paths";

export const tokenizerFixturesDir = path.join(fixturesDir, "tokenizer");

/** The content of test/fixtures/tokenizer/<name> (a .gz file), unpacked. */
export function readTokenizerFixtureBytes(name: string): Buffer {
  return gunzipSync(fs.readFileSync(path.join(tokenizerFixturesDir, name)));
}

/** Parses test/fixtures/tokenizer/<name> (a .json.gz file). */
export function readTokenizerFixture<T>(name: string): T {
  return JSON.parse(readTokenizerFixtureBytes(name).toString("utf8")) as T;
}

let jsonDir: string | undefined;

/**
 * The folder transformers 5 saved (tokenizer.json + tokenizer_config.json), unpacked once per process into a
 * temporary folder that is removed at exit.
 */
export function transformers5TokenizerDir(): string {
  if (jsonDir) return jsonDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "t5-json-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, "tokenizer.json"), readTokenizerFixtureBytes("json/tokenizer.json.gz"));
  fs.copyFileSync(path.join(tokenizerFixturesDir, "json", "tokenizer_config.json"), path.join(dir, "tokenizer_config.json"));
  jsonDir = dir;
  return dir;
}
