/**
 * Reads a `tokenizers` serialization (`tokenizer.json`) of a T5 tokenizer, as transformers 5 writes it.
 *
 * transformers 5's T5Tokenizer does not run the pipeline stored in the file: it takes the Unigram vocabulary
 * and the Precompiled charsmap from it and rebuilds its own pipeline (charsmap normalizer, whitespace split,
 * Metaspace "▁" prefix, `$A </s>` post-processor). So only those two parts change ids; the file's other
 * normalizers (e.g. a `Replace` of runs of spaces in files written by transformers 4), its pre-tokenizer and
 * post-processor are ignored, as transformers ignores them. The `added_tokens` list is read as transformers
 * reads it when tokenizer_config.json has no `added_tokens_decoder`.
 */
import { isJsonObject, JsonObject, JsonValue, readJsonObject } from "../io/json";
import { TokenizerFileError, UnsupportedTokenizerError } from "./errors";
import { AddedTokenSpec } from "./tokenizer-config";

export const TOKENIZER_JSON_FILE = "tokenizer.json";

export interface TokenizerJson {
  file: string;
  vocab: Array<[string, number]>;
  charsmap: Uint8Array | null;
  addedTokens: AddedTokenSpec[];
}

function vocabOf(model: JsonObject, file: string): Array<[string, number]> {
  const vocab = model["vocab"];
  if (!Array.isArray(vocab) || vocab.length === 0) {
    throw new TokenizerFileError(file, "expected a non-empty list of [piece, score] pairs", { field: "model.vocab" });
  }
  return vocab.map((entry, i): [string, number] => {
    if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number") {
      throw new TokenizerFileError(file, "expected a [piece, score] pair", { field: `model.vocab[${i}]` });
    }
    // A NaN score wins no comparison, so the piece would silently never be chosen (or always, for Infinity).
    if (!Number.isFinite(entry[1])) {
      throw new TokenizerFileError(file, `expected a finite score, found ${entry[1]}`, { field: `model.vocab[${i}]` });
    }
    return [entry[0], entry[1]];
  });
}

/** The first Precompiled normalizer's charsmap (alone or inside a Sequence), as transformers 5 picks it. */
function charsmapOf(normalizer: JsonValue | undefined, file: string): Uint8Array | null {
  if (normalizer === undefined || normalizer === null) return null;
  if (!isJsonObject(normalizer)) throw new TokenizerFileError(file, "expected an object or null", { field: "normalizer" });
  const list = normalizer["type"] === "Sequence" ? normalizer["normalizers"] : [normalizer];
  if (!Array.isArray(list)) {
    throw new TokenizerFileError(file, "expected a list", { field: "normalizer.normalizers" });
  }
  for (const [i, n] of list.entries()) {
    if (isJsonObject(n) && n["type"] === "Precompiled" && "precompiled_charsmap" in n) {
      const b64 = n["precompiled_charsmap"];
      if (b64 === null) return null;
      if (typeof b64 !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
        throw new TokenizerFileError(file, "expected a base64 string", {
          field: `normalizer${list === normalizer["normalizers"] ? `.normalizers[${i}]` : ""}.precompiled_charsmap`,
        });
      }
      return new Uint8Array(Buffer.from(b64, "base64"));
    }
  }
  return null;
}

function addedTokensOf(value: JsonValue | undefined, file: string): AddedTokenSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TokenizerFileError(file, "expected a list", { field: "added_tokens" });
  return value.map((t, i) => {
    const field = `added_tokens[${i}]`;
    if (!isJsonObject(t) || typeof t["content"] !== "string") {
      throw new TokenizerFileError(file, "expected an object with a string \"content\"", { field });
    }
    if (t["single_word"] === true) {
      throw new UnsupportedTokenizerError(file, `token "${t["content"]}" has single_word: true`, { field });
    }
    const special = t["special"] === true;
    return { content: t["content"], special, normalized: t["normalized"] === true };
  });
}

/** Parses the content of a tokenizer.json (`file` is for messages). */
export function parseTokenizerJson(doc: JsonObject, file: string): TokenizerJson {
  const model = doc["model"];
  if (!isJsonObject(model)) throw new TokenizerFileError(file, "expected an object", { field: "model" });
  if (model["type"] !== "Unigram") {
    throw new UnsupportedTokenizerError(file, `model type ${JSON.stringify(model["type"])} is not "Unigram"`, {
      field: "model.type",
    });
  }
  return {
    file,
    vocab: vocabOf(model, file),
    charsmap: charsmapOf(doc["normalizer"], file),
    addedTokens: addedTokensOf(doc["added_tokens"], file),
  };
}

/** Reads and parses `file`. A missing file or bad JSON is a `ConfigError` from `io/json`; a bad shape a `TokenizerFileError`. */
export async function readTokenizerJson(file: string): Promise<TokenizerJson> {
  return parseTokenizerJson(await readJsonObject(file), file);
}
