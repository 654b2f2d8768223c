/**
 * transformers 5's `T5Tokenizer` (tokenizers backend) in TypeScript. The same pipeline runs whichever file the
 * folder holds, as in transformers 5, which converts `spiece.model` into this pipeline instead of running
 * SentencePiece:
 *
 * 1. added tokens (`<pad>`, `</s>`, `<unk>`, `<extra_id_N>`, ...) are split off the raw text;
 * 2. each remaining piece is normalized with the model's precompiled charsmap (nmt_nfkc for T5);
 * 3. tokens flagged `normalized` are split off the normalized text;
 * 4. pre-tokenization: split on Unicode White_Space (dropping it), then per word: prefix "▁" unless it
 *    already starts with one, and cut before every "▁";
 * 5. each piece is segmented by the unigram model;
 * 6. truncation keeps the first `maxLength - 1` ids, then `</s>` is appended (always, even after a literal
 *    `</s>`), then right padding with `<pad>` and a mask of ones over the real ids.
 */
import { promises as fsp } from "fs";
import * as path from "path";
import { AddedTokenMatcher, Segment } from "./added-tokens";
import { TokenizerArgumentError, TokenizerFileError, UnsupportedTokenizerError } from "./errors";
import { PrecompiledCharsmap } from "./precompiled-charsmap";
import { PieceType, readSentencePieceModel, SentencePieceModel } from "./sentencepiece-model";
import { AddedTokenSpec, readTokenizerConfig, TokenizerConfig } from "./tokenizer-config";
import { readTokenizerJson, TOKENIZER_JSON_FILE, TokenizerJson } from "./tokenizer-json";
import { UnigramModel } from "./unigram";

export const SPIECE_MODEL_FILE = "spiece.model";
/** PixArt-Sigma's `max_sequence_length`. */
export const DEFAULT_MAX_LENGTH = 300;
/** transformers' T5Tokenizer builds its Unigram model with unk_id=2 whatever the files say. */
const T5_UNK_ID = 2;
const METASPACE = "\u2581";
const NON_WHITE_SPACE = /\P{White_Space}+/gu;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface EncodeOptions {
  /** Default 300. */
  maxLength?: number;
  /** "max_length" (default): every row has `maxLength` ids; "longest": rows are padded to the longest one. */
  padding?: "max_length" | "longest";
  /** Default true: keep the first `maxLength - 1` ids of each text, then EOS. */
  truncation?: boolean;
}

/** Batch of token ids and attention masks, one row per text; rows have equal lengths after padding. */
export interface EncodedBatch {
  inputIds: number[][];
  attentionMask: number[][];
}

export interface DecodeOptions {
  /** Drop special tokens (pad, EOS, unk, sentinels), as transformers' `skip_special_tokens`. Default false. */
  skipSpecialTokens?: boolean;
}

interface TokenizerParts {
  source: string;
  model: UnigramModel;
  normalizer: PrecompiledCharsmap | null;
  config: TokenizerConfig;
  /** Added tokens from the files other than the config (the model's control pieces, tokenizer.json's list). */
  fileTokens: AddedTokenSpec[];
}

export class T5Tokenizer {
  /** The file the vocabulary was read from. */
  readonly source: string;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId = T5_UNK_ID;
  private readonly model: UnigramModel;
  private readonly normalizer: PrecompiledCharsmap | null;
  private readonly rawTokens: AddedTokenMatcher;
  private readonly normalizedTokens: AddedTokenMatcher;
  private readonly specialIds = new Set<number>();

  private constructor(parts: TokenizerParts) {
    this.source = parts.source;
    this.model = parts.model;
    this.normalizer = parts.normalizer;
    const { config } = parts;
    const vocabId = (token: string, what: string): number => {
      const id = this.model.idOf(token);
      if (id === undefined) throw new UnsupportedTokenizerError(this.source, `${what} "${token}" is not in the vocabulary`);
      return id;
    };
    if (this.model.pieceOf(T5_UNK_ID) !== config.unkToken) {
      throw new UnsupportedTokenizerError(
        this.source,
        `id ${T5_UNK_ID} is "${this.model.pieceOf(T5_UNK_ID)}", but T5 tokenizers need the unknown token "${config.unkToken}" there`,
      );
    }
    this.eosTokenId = vocabId(config.eosToken, "EOS token");
    this.padTokenId = vocabId(config.padToken, "pad token");

    const sentinels = Array.from({ length: config.extraIds }, (_, i): AddedTokenSpec => ({
      content: `<extra_id_${i}>`,
      special: true,
      normalized: false,
    }));
    const raw: Array<{ content: string; id: number }> = [];
    const normalized: Array<{ content: string; id: number }> = [];
    const seen = new Set<string>();
    for (const t of [...config.addedTokens, ...parts.fileTokens, ...sentinels]) {
      if (seen.has(t.content)) continue;
      seen.add(t.content);
      const id = vocabId(t.content, "added token");
      (t.normalized ? normalized : raw).push({ content: t.content, id });
      if (t.special) this.specialIds.add(id);
    }
    this.rawTokens = new AddedTokenMatcher(raw);
    this.normalizedTokens = new AddedTokenMatcher(normalized);
  }

  /**
   * Loads the tokenizer folder `dir` (a pipeline's `tokenizer/`). Like transformers 5, `tokenizer.json` is used
   * when present, else `spiece.model`; `tokenizer_config.json` and `special_tokens_map.json` are optional.
   */
  static async fromPretrained(dir: string): Promise<T5Tokenizer> {
    const jsonFile = path.join(dir, TOKENIZER_JSON_FILE);
    const spieceFile = path.join(dir, SPIECE_MODEL_FILE);
    if (await exists(jsonFile)) return T5Tokenizer.fromTokenizerJson(await readTokenizerJson(jsonFile), dir);
    if (await exists(spieceFile)) return T5Tokenizer.fromSentencePiece(await readSentencePieceModel(spieceFile), dir);
    const problem = (await exists(dir)) ? `has neither ${TOKENIZER_JSON_FILE} nor ${SPIECE_MODEL_FILE}` : "folder not found";
    throw new TokenizerFileError(dir, `${problem}; expected a T5 tokenizer folder`);
  }

  /** From a parsed spiece.model; `configDir` (optional) holds tokenizer_config.json. */
  static async fromSentencePiece(spm: SentencePieceModel, configDir?: string): Promise<T5Tokenizer> {
    const config = await readTokenizerConfig(configDir ?? path.dirname(spm.file));
    // transformers appends the sentinels to the SentencePiece vocabulary in reverse: <extra_id_0> is last.
    const vocab: Array<[string, number]> = spm.pieces.map((p) => [p.piece, p.score]);
    for (let i = config.extraIds - 1; i >= 0; i--) vocab.push([`<extra_id_${i}>`, 0]);
    // Control and user-defined pieces become added tokens (control ones special), as in transformers.
    const fileTokens = spm.pieces
      .filter((p) => p.type === PieceType.Control || p.type === PieceType.UserDefined)
      .map((p): AddedTokenSpec => ({ content: p.piece, special: p.type === PieceType.Control, normalized: false }));
    const charsmap = spm.normalizerSpec.precompiledCharsmap;
    return new T5Tokenizer({
      source: spm.file,
      model: new UnigramModel(vocab, T5_UNK_ID),
      normalizer: charsmap.length > 0 ? new PrecompiledCharsmap(charsmap, spm.file, "normalizer_spec.precompiled_charsmap") : null,
      config,
      fileTokens,
    });
  }

  /** From a parsed tokenizer.json; `configDir` (optional) holds tokenizer_config.json. */
  static async fromTokenizerJson(json: TokenizerJson, configDir?: string): Promise<T5Tokenizer> {
    const config = await readTokenizerConfig(configDir ?? path.dirname(json.file));
    return new T5Tokenizer({
      source: json.file,
      model: new UnigramModel(json.vocab, T5_UNK_ID),
      normalizer: json.charsmap ? new PrecompiledCharsmap(json.charsmap, json.file, "normalizer.precompiled_charsmap") : null,
      config,
      fileTokens: json.addedTokens,
    });
  }

  /** Number of ids (SentencePiece pieces + sentinels), transformers' `len(tokenizer)`. */
  get vocabSize(): number {
    return this.model.size;
  }

  /** Id of a piece or special token, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.model.idOf(token);
  }

  idToToken(id: number): string | undefined {
    return this.model.pieceOf(id);
  }

  /** Ids of one text, without EOS, truncation or padding. */
  tokenize(text: string): number[] {
    checkText(text, "text");
    return this.idsOf(text);
  }

  /**
   * Ids of `text`; stops once it has `limit` ids. Every segment and word gives at least one id and the ids of
   * one do not depend on the text after it, so the first `limit` ids are those of the whole text: truncation
   * costs time in the kept part only (a 1 MB prompt is not segmented past its first 300 words).
   */
  private idsOf(text: string, limit = Infinity): number[] {
    const ids: number[] = [];
    for (const seg of this.rawTokens.split(text)) {
      if (ids.length >= limit) break;
      if ("id" in seg) ids.push(seg.id);
      else this.tokenizePlain(seg.text, ids, limit);
    }
    return ids;
  }

  private tokenizePlain(text: string, out: number[], limit: number): void {
    const normalized = this.normalizer ? this.normalizer.normalize(text) : text;
    const segments: Segment[] = this.normalizedTokens.split(normalized);
    for (const seg of segments) {
      if (out.length >= limit) return;
      if ("id" in seg) {
        out.push(seg.id);
        continue;
      }
      for (const word of words(seg.text)) {
        if (out.length >= limit) return;
        for (const piece of metaspacePieces(word)) for (const id of this.model.tokenize(piece)) out.push(id);
      }
    }
  }

  /**
   * Tokenizes a batch the way the PixArt pipeline calls transformers:
   * `tokenizer(texts, padding="max_length", max_length=300, truncation=True, add_special_tokens=True)`.
   */
  encode(texts: string | readonly string[], options: EncodeOptions = {}): EncodedBatch {
    const list = typeof texts === "string" ? [texts] : texts;
    if (!Array.isArray(list)) throw new TokenizerArgumentError("texts", "expected a string or an array of strings");
    const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new TokenizerArgumentError("maxLength", `expected an integer >= 1, got ${String(maxLength)}`);
    }
    const padding = options.padding ?? "max_length";
    if (padding !== "max_length" && padding !== "longest") {
      throw new TokenizerArgumentError("padding", `expected "max_length" or "longest", got ${JSON.stringify(padding)}`);
    }
    const truncation = options.truncation ?? true;
    const rows = list.map((text, i) => {
      checkText(text, `texts[${i}]`);
      const ids = this.idsOf(text, truncation ? maxLength - 1 : Infinity);
      if (truncation && ids.length > maxLength - 1) ids.length = maxLength - 1;
      ids.push(this.eosTokenId);
      return ids;
    });
    const width = padding === "max_length" ? maxLength : Math.max(0, ...rows.map((r) => r.length));
    return {
      inputIds: rows.map((r) => (r.length < width ? r.concat(new Array<number>(width - r.length).fill(this.padTokenId)) : r)),
      attentionMask: rows.map((r) => {
        const mask = new Array<number>(Math.max(width, r.length)).fill(0);
        return mask.fill(1, 0, r.length);
      }),
    };
  }

  /** Text of `ids`, as transformers' `decode` (Metaspace decoding, no clean-up of spaces). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const pieces: string[] = [];
    for (const id of ids) {
      const piece = this.model.pieceOf(id);
      if (piece === undefined) throw new TokenizerArgumentError("ids", `id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      if (options.skipSpecialTokens && this.specialIds.has(id)) continue;
      pieces.push(piece);
    }
    // The Metaspace decoder turns "▁" into a space, except in the first piece, where it drops them.
    return pieces.map((p, i) => p.replaceAll(METASPACE, i === 0 ? "" : " ")).join("");
  }
}

/** The non-empty runs between Unicode White_Space, lazily (a long text is only read as far as needed). */
function* words(text: string): Generator<string> {
  for (const [word] of text.matchAll(NON_WHITE_SPACE)) yield word;
}

/** A word cut as the Metaspace pre-tokenizer does: "▁" prefixed unless present, then split before each "▁". */
function metaspacePieces(word: string): string[] {
  const w = word.startsWith(METASPACE) ? word : METASPACE + word;
  const pieces: string[] = [];
  let start = 0;
  for (let i = w.indexOf(METASPACE, 1); i >= 0; i = w.indexOf(METASPACE, i + 1)) {
    pieces.push(w.slice(start, i));
    start = i;
  }
  pieces.push(w.slice(start));
  return pieces;
}

function checkText(text: unknown, argument: string): asserts text is string {
  if (typeof text !== "string") throw new TokenizerArgumentError(argument, `expected a string, got ${typeof text}`);
  if (LONE_SURROGATE.test(text)) {
    throw new TokenizerArgumentError(argument, "contains a lone UTF-16 surrogate, which is not valid Unicode text");
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Rows of ids as one int64 tensor's data, row-major, for onnxruntime (`new ort.Tensor("int64", data, dims)`).
 * Rows must have equal lengths (they do after padding).
 */
export function toInt64Tensor(rows: readonly (readonly number[])[]): { data: BigInt64Array; dims: [number, number] } {
  const width = rows[0]?.length ?? 0;
  const data = new BigInt64Array(rows.length * width);
  rows.forEach((row, r) => {
    if (row.length !== width) {
      throw new TokenizerArgumentError(`rows[${r}]`, `has ${row.length} ids, expected ${width} like rows[0]`);
    }
    row.forEach((v, c) => {
      data[r * width + c] = BigInt(v);
    });
  });
  return { data, dims: [rows.length, width] };
}
