/**
 * Building blocks for reproducing Python `re` patterns (str patterns, no flags) with JavaScript RegExps.
 * Python's \w, \d, \s are Unicode-wide (and \b follows \w), and Python's `$` also matches before a final
 * newline; JavaScript's \w, \d, \b are ASCII-only and its `$` does not. Use these with the `u` flag.
 */
import { RE_DIGIT, RE_SPACE, RE_WORD } from "./python-str-tables";

/** Character-class bodies, to put inside [...]. */
export const WORD_CHARS = RE_WORD;
export const DIGIT_CHARS = RE_DIGIT;
export const SPACE_CHARS = RE_SPACE;

/** \w \W \d \D \s \S as classes. */
export const W = `[${RE_WORD}]`;
export const NOT_W = `[^${RE_WORD}]`;
export const D = `[${RE_DIGIT}]`;
export const NOT_D = `[^${RE_DIGIT}]`;
export const S = `[${RE_SPACE}]`;
export const NOT_S = `[^${RE_SPACE}]`;
/** \b: a boundary between a word and a non-word character (or the text's ends). */
export const B = `(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`;
/** `$` without MULTILINE: the end, or just before a newline that ends the text. */
export const END = "(?=\\n?$)";

/** A global, Unicode RegExp from pattern source built with the blocks above. */
export function re(source: string): RegExp {
  return new RegExp(source, "gu");
}
