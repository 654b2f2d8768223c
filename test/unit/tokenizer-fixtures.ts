/** Reading the tokenizer reference fixtures (gzipped JSON from tools/reference/tokenizer.py). */
import * as fs from "fs";
import * as path from "path";
import { gunzipSync } from "zlib";
import { fixturesDir } from "../helpers/paths";

export const tokenizerFixturesDir = path.join(fixturesDir, "tokenizer");

/** Parses test/fixtures/tokenizer/<name> (a .json.gz file). */
export function readTokenizerFixture<T>(name: string): T {
  return JSON.parse(gunzipSync(fs.readFileSync(path.join(tokenizerFixturesDir, name))).toString("utf8")) as T;
}
