/**
 * Typed errors of the tokenizer. File problems extend the checkpoint errors of `io/` so that a loader can
 * catch every "this checkpoint is broken" case with one class; argument problems are plain `Error`s.
 */
import { CheckpointError, ErrorLocation } from "../io/errors";

/** A tokenizer file is missing, unreadable, or not what its name says (corrupt protobuf, bad JSON shape). */
export class TokenizerFileError extends CheckpointError {
  override name = "TokenizerFileError";
}

/**
 * A tokenizer file is well formed but asks for something this port does not implement (a BPE model, an added
 * token with `single_word`...). Refusing beats tokenizing differently from transformers without a word.
 */
export class UnsupportedTokenizerError extends CheckpointError {
  override name = "UnsupportedTokenizerError";
  constructor(file: string, problem: string, loc: ErrorLocation = {}) {
    super(file, `${problem} (not supported by this T5 tokenizer port)`, loc);
  }
}

/** An argument of `encode` / `decode` / the text preprocessing is out of range or of the wrong type. */
export class TokenizerArgumentError extends Error {
  override name = "TokenizerArgumentError";
  readonly argument: string;
  constructor(argument: string, problem: string) {
    super(`${argument}: ${problem}`);
    this.argument = argument;
  }
}

/**
 * `clean_caption` reached a step of diffusers' cleaner that this port does not reproduce for this text
 * (HTML markup for BeautifulSoup, mojibake repair or entity decoding in ftfy). `text` is the text at that step.
 */
export class CleanCaptionUnsupportedError extends Error {
  override name = "CleanCaptionUnsupportedError";
  readonly reason: string;
  readonly text: string;
  constructor(reason: string, text: string) {
    const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
    super(`clean_caption: ${reason}, for ${JSON.stringify(shown)}; use cleanCaption: false or clean the text first`);
    this.reason = reason;
    this.text = text;
  }
}
