/**
 * The part of ftfy 6.3's `fix_text` (default options) that clean_caption needs, for the text it can handle.
 *
 * Ported: the per-line loop and, in each pass, ligatures, character width, curly quotes, line breaks,
 * terminal escapes, control characters and NFC, repeated until nothing changes; and the mojibake heuristic
 * `is_bad`, which decides whether ftfy would try to re-decode the text.
 * Not ported (the call throws `CleanCaptionUnsupportedError` instead of guessing): the mojibake repair itself
 * (it only runs on text that `is_bad` flags) and the HTML entity decoding (it only acts on "&name;" or
 * "&#n;" patterns). C1 control characters always make `is_bad` true, so their fix is never reached.
 */
import { CleanCaptionUnsupportedError } from "./errors";
import { CONTROL_CHARS, DOUBLE_QUOTES, LIGATURES, MOJIBAKE, SINGLE_QUOTES, WIDTH_MAP } from "./ftfy-tables";
import { D, S, W } from "./python-regex";

/** ftfy's default `max_decode_length`: longer lines are fixed in pieces (not ported: refused). */
const MAX_DECODE_LENGTH = 1_000_000;
const HTML_ENTITY = /&#?[0-9A-Za-z]{1,24};/;
const ASCII = /^[\x00-\x7f]*$/;

function translation(entries: ReadonlyArray<readonly [number, string]>): Map<string, string> {
  return new Map(entries.map(([cp, s]) => [String.fromCodePoint(cp), s]));
}
const LIGATURE_MAP = translation(LIGATURES);
const WIDTH = translation(WIDTH_MAP);
const CONTROL = new Set(CONTROL_CHARS.map((cp) => String.fromCodePoint(cp)));

function translate(text: string, map: ReadonlyMap<string, string>): string {
  let out = "";
  for (const c of text) out += map.get(c) ?? c;
  return out;
}

/**
 * ftfy's `is_bad`: does the text contain a sequence typical of mojibake? The alternatives follow
 * `ftfy.badness.BADNESS_RE`, built from the same character categories.
 */
function badnessRegex(): RegExp {
  const c = MOJIBAKE as Record<string, string>;
  const cls = (...names: string[]) => `[${names.map((n) => c[n]).join("")}]`;
  const any = "[^\\n]"; // Python's "." (no DOTALL)
  const parts = [
    cls("c1"),
    cls("bad", "lower_accented", "upper_accented", "box", "start_punctuation", "end_punctuation", "currency", "numeric", "law") + cls("bad"),
    `[a-zA-Z]${cls("lower_common", "upper_common")}${cls("bad")}`,
    cls("bad") + cls("lower_accented", "upper_accented", "box", "start_punctuation", "end_punctuation", "currency", "numeric", "law"),
    cls("lower_accented", "lower_common", "box", "end_punctuation", "currency", "numeric") + cls("upper_accented"),
    cls("box", "end_punctuation", "currency", "numeric") + cls("lower_accented"),
    cls("lower_accented", "box", "end_punctuation") + cls("currency"),
    `${S}${cls("upper_accented")}${cls("currency")}`,
    cls("upper_accented", "box") + cls("numeric", "law"),
    cls("lower_accented", "upper_accented", "box", "currency", "end_punctuation") + cls("start_punctuation") + cls("numeric"),
    cls("lower_accented", "upper_accented", "currency", "numeric", "box", "law") + cls("end_punctuation") + cls("start_punctuation"),
    cls("currency", "numeric", "box") + cls("start_punctuation"),
    `[a-z]${cls("upper_accented")}${cls("start_punctuation", "currency")}`,
    cls("box") + cls("kaomoji"),
    cls("lower_accented", "upper_accented", "currency", "numeric", "start_punctuation", "end_punctuation", "law") + cls("box"),
    cls("box") + cls("end_punctuation"),
    cls("lower_accented", "upper_accented") + cls("start_punctuation", "end_punctuation") + W,
    "[Œœ][^A-Za-z]",
    `${cls("upper_accented")}°`,
    `[ÂÃÎÐ][€œŠš¢£Ÿž\\u00a0\\u00ad®©°·»${c["start_punctuation"]}${c["end_punctuation"]}–—´]`,
    "×[²³]",
    `[ØÙ][${c["common"]}${c["currency"]}${c["bad"]}${c["numeric"]}${c["start_punctuation"]}ŸŠ®°µ»]`.repeat(2),
    "à[²µ¹¼½¾]",
    "√[±∂†≠®™´≤≥¥µø]",
    "≈[°¢]",
    "‚Ä[ìîïòôúùû†°¢π]",
    "‚[âó][àä°ê]",
    "вЂ",
    `[ВГРС][${c["c1"]}${c["bad"]}${c["start_punctuation"]}${c["end_punctuation"]}${c["currency"]}°µ][ВГРС]`,
    `ГўВЂВ${any}[A-Za-z ]`,
    "Ã[\\u00a0¡]",
    `[a-z]${S}?[ÃÂ][ ]`,
    "^[ÃÂ][ ]",
    `[a-z.,?!${c["end_punctuation"]}]Â[ ${c["start_punctuation"]}${c["end_punctuation"]}]`,
    "β€[™\\u00a0Ά\\u00ad®°]",
    `[ΒΓΞΟ][${c["c1"]}${c["bad"]}${c["start_punctuation"]}${c["end_punctuation"]}${c["currency"]}°][ΒΓΞΟ]`,
    "ā€",
  ];
  return new RegExp(parts.join("|"), "u");
}
const BADNESS = badnessRegex();

/** ftfy's `is_bad`. */
export function isBad(text: string): boolean {
  return BADNESS.test(text);
}

const SINGLE_QUOTE = new RegExp(`[${SINGLE_QUOTES}]`, "gu");
const DOUBLE_QUOTE = new RegExp(`[${DOUBLE_QUOTES}]`, "gu");
const TERMINAL_ESCAPE = new RegExp(`\\x1b\\[(?:${D}|;)*[a-zA-Z]`, "gu");

/** One pass of ftfy's fixers over one line (after the encoding check). */
function fixOnce(text: string): string {
  let t = translate(text, LIGATURE_MAP);
  t = translate(t, WIDTH);
  t = t.replace(DOUBLE_QUOTE, '"').replace(SINGLE_QUOTE, "'");
  t = t.replace(/\r\n/g, "\n").replace(/[\r\u2028\u2029\u0085]/g, "\n");
  t = t.replace(TERMINAL_ESCAPE, "");
  let kept = "";
  for (const ch of t) if (!CONTROL.has(ch)) kept += ch;
  return kept.normalize("NFC");
}

function fixLine(line: string, unescapeHtml: boolean): string {
  let text = line;
  for (;;) {
    const before = text;
    if (unescapeHtml && HTML_ENTITY.test(text)) {
      throw new CleanCaptionUnsupportedError("ftfy would decode an HTML entity (not ported)", text);
    }
    if (!ASCII.test(text) && isBad(text)) {
      throw new CleanCaptionUnsupportedError("ftfy would try to repair mojibake (not ported)", text);
    }
    text = fixOnce(text);
    if (text === before) return text;
  }
}

/** `ftfy.fix_text(text)` with default options, for text within the ported part (else throws). */
export function fixText(text: string): string {
  let out = "";
  // ftfy's "auto" HTML unescaping is switched off for good once a line contains "<".
  let unescapeHtml = true;
  for (let pos = 0; pos < text.length; ) {
    const end = text.indexOf("\n", pos) + 1 || text.length;
    const line = text.slice(pos, end);
    if (line.length > MAX_DECODE_LENGTH) {
      throw new CleanCaptionUnsupportedError(`ftfy would cut a line of over ${MAX_DECODE_LENGTH} characters`, line.slice(0, 80));
    }
    if (unescapeHtml && line.includes("<")) unescapeHtml = false;
    out += fixLine(line, unescapeHtml);
    pos = end;
  }
  return out;
}
