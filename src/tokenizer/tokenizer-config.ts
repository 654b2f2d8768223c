/**
 * The parts of `tokenizer_config.json` / `special_tokens_map.json` (both optional) that change T5 token ids:
 * the names of the EOS / PAD / UNK tokens, `extra_ids`, and the tokens that are split off the raw text
 * before normalization (special and added tokens).
 */
import { promises as fsp } from "fs";
import * as path from "path";
import { isJsonObject, JsonObject, JsonValue, readJsonObject } from "../io/json";
import { TokenizerFileError, UnsupportedTokenizerError } from "./errors";

/** T5 has 100 sentinels; far more is a broken file (1e9 once filled memory building their names). */
export const MAX_EXTRA_IDS = 10_000;

/** An added token, with the `tokenizers` flags that matter for matching it in text. */
export interface AddedTokenSpec {
  content: string;
  /** Special tokens are dropped by `decode(..., { skipSpecialTokens: true })`. */
  special: boolean;
  /** Matched in the normalized text instead of the raw text. */
  normalized: boolean;
}

export interface TokenizerConfig {
  eosToken: string;
  padToken: string;
  unkToken: string;
  extraIds: number;
  /** Every token named by the config files (named tokens, additional/extra special tokens, added tokens). */
  addedTokens: AddedTokenSpec[];
}

export const CONFIG_FILE = "tokenizer_config.json";
export const SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json";

async function readOptionalObject(file: string): Promise<JsonObject | undefined> {
  try {
    await fsp.access(file);
  } catch {
    return undefined;
  }
  return readJsonObject(file);
}

/**
 * A token as written by transformers: a string, or an AddedToken dict. `special` is the default when the
 * dict does not say. lstrip / rstrip are accepted and ignored: they only move whitespace into the token's
 * span, and the T5 pre-tokenizer drops whitespace anyway. single_word changes matching and is refused.
 */
function addedToken(value: JsonValue, special: boolean, file: string, field: string): AddedTokenSpec {
  if (typeof value === "string") return { content: value, special, normalized: !special };
  if (!isJsonObject(value) || typeof value["content"] !== "string") {
    throw new TokenizerFileError(file, "expected a token string or an object with a string \"content\"", { field });
  }
  if (value["single_word"] === true) {
    throw new UnsupportedTokenizerError(file, `token "${value["content"]}" has single_word: true`, { field });
  }
  const isSpecial = typeof value["special"] === "boolean" ? value["special"] : special;
  const normalized = typeof value["normalized"] === "boolean" ? value["normalized"] : !isSpecial;
  return { content: value["content"], special: isSpecial, normalized };
}

function tokenList(value: JsonValue | undefined, file: string, field: string): AddedTokenSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TokenizerFileError(file, "expected a list of tokens", { field });
  return value.map((v, i) => addedToken(v, true, file, `${field}[${i}]`));
}

/** Reads the optional config files of the tokenizer folder `dir`. */
export async function readTokenizerConfig(dir: string): Promise<TokenizerConfig> {
  const configFile = path.join(dir, CONFIG_FILE);
  const mapFile = path.join(dir, SPECIAL_TOKENS_MAP_FILE);
  const config = (await readOptionalObject(configFile)) ?? {};
  const decoder = config["added_tokens_decoder"];
  // transformers reads special_tokens_map.json only when the config has no added_tokens_decoder, and its
  // values then win over the config's.
  const map = decoder === undefined ? ((await readOptionalObject(mapFile)) ?? {}) : {};

  const named = (key: string, fallback: string): AddedTokenSpec => {
    const [value, file] = map[key] !== undefined ? [map[key], mapFile] : [config[key], configFile];
    return value === undefined || value === null
      ? { content: fallback, special: true, normalized: false }
      : addedToken(value, true, file, key);
  };
  const eos = named("eos_token", "</s>");
  const pad = named("pad_token", "<pad>");
  const unk = named("unk_token", "<unk>");

  const extraIds = config["extra_ids"] ?? 100;
  if (typeof extraIds !== "number" || !Number.isInteger(extraIds) || extraIds < 0 || extraIds > MAX_EXTRA_IDS) {
    throw new TokenizerFileError(configFile, `expected an integer from 0 to ${MAX_EXTRA_IDS}, found ${String(extraIds)}`, {
      field: "extra_ids",
    });
  }
  const added = [eos, pad, unk];
  for (const [source, file] of [
    [config, configFile],
    [map, mapFile],
  ] as const) {
    for (const key of ["additional_special_tokens", "extra_special_tokens"]) {
      added.push(...tokenList(source[key], file, key));
    }
  }
  if (isJsonObject(decoder)) {
    for (const [id, value] of Object.entries(decoder)) {
      added.push(addedToken(value, false, configFile, `added_tokens_decoder.${id}`));
    }
  } else if (decoder !== undefined) {
    throw new TokenizerFileError(configFile, "expected an object of id -> token", { field: "added_tokens_decoder" });
  }
  return { eosToken: eos.content, padToken: pad.content, unkToken: unk.content, extraIds, addedTokens: added };
}
