/**
 * The text preprocessing of diffusers' PixArt pipelines (`_text_preprocessing`), which runs before the
 * tokenizer: with `clean_caption=False` it is Python's `text.lower().strip()`; with `clean_caption=True` it is
 * `_clean_caption` applied twice (clean-caption.ts says what is ported).
 */
import { cleanCaption } from "./clean-caption";
import { TokenizerArgumentError } from "./errors";
import { pythonLower, pythonStrip } from "./python-str";

export interface TextPreprocessingOptions {
  /**
   * diffusers' `clean_caption`. Default false, as in `encode_prompt`; note that the pipeline's `__call__`
   * defaults to true (and silently falls back to false when bs4 or ftfy is not installed).
   */
  cleanCaption?: boolean;
}

/**
 * diffusers' `_text_preprocessing`: one output string per input string. With `cleanCaption`, text outside
 * the ported part of the cleaner throws `CleanCaptionUnsupportedError`.
 */
export function textPreprocessing(texts: string | readonly string[], options: TextPreprocessingOptions = {}): string[] {
  const list = typeof texts === "string" ? [texts] : texts;
  return list.map((text, i) => {
    if (typeof text !== "string") throw new TokenizerArgumentError(`texts[${i}]`, `expected a string, got ${typeof text}`);
    return options.cleanCaption ? cleanCaption(cleanCaption(text)) : pythonStrip(pythonLower(text));
  });
}
