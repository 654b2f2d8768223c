/**
 * diffusers' `_clean_caption` (inherited from DeepFloyd IF), step by step, with Python `re` semantics.
 *
 * Two steps call libraries that are not ported; for them the port handles the inputs on which their effect
 * is known and throws `CleanCaptionUnsupportedError` otherwise (never a silent difference):
 * - BeautifulSoup(html.parser).text: ported for text where no "&" is followed by [A-Za-z0-9#] and no "<" by
 *   [A-Za-z/!?] (no markup, entity or character reference can start). There it returns the text itself,
 *   except that a text made only of ASCII whitespace becomes "\n" (if it has one) or " ".
 * - ftfy.fix_text and the two html.unescape calls: see ftfy.ts; html.unescape is the identity without "&".
 */
import { fixText } from "./ftfy";
import { CleanCaptionUnsupportedError } from "./errors";
import { B, D, DIGIT_CHARS, END, NOT_D, NOT_S, re, S, W, WORD_CHARS } from "./python-regex";
import { pythonLower, pythonStrip } from "./python-str";

/** Python's `urllib.parse.unquote_plus` (UTF-8, errors="replace"). */
export function unquotePlus(text: string): string {
  const s = text.replaceAll("+", " ");
  if (!s.includes("%")) return s;
  const decoder = new TextDecoder("utf-8");
  // Python decodes each run of ASCII characters on its own; other characters pass through.
  return s.replace(/[\x00-\x7f]+/g, (run) => {
    if (!run.includes("%")) return run;
    const bytes: number[] = [];
    for (let i = 0; i < run.length; i++) {
      const hex = run.slice(i + 1, i + 3);
      if (run[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(run.charCodeAt(i));
      }
    }
    return decoder.decode(new Uint8Array(bytes));
  });
}

const BS4_MARKUP = /&[A-Za-z0-9#]|<[A-Za-z/!?]/;
const ASCII_SPACES_ONLY = /^[ \n\t\f\r]+$/;

/** BeautifulSoup(text, "html.parser").text, for text that cannot contain markup (else throws). */
function htmlText(text: string): string {
  if (BS4_MARKUP.test(text)) {
    throw new CleanCaptionUnsupportedError("the text may contain HTML markup or entities (BeautifulSoup not ported)", text);
  }
  if (ASCII_SPACES_ONLY.test(text)) return text.includes("\n") ? "\n" : " ";
  return text;
}

function htmlUnescape(text: string): string {
  if (text.includes("&")) throw new CleanCaptionUnsupportedError("html.unescape would see an \"&\" (not ported)", text);
  return text;
}

const URL_CHARS = "a-zA-Z0-9.\\-";
const URL_TAIL = `[${URL_CHARS}]+[.](?:com|co|ru|net|org|edu|gov|it)[${WORD_CHARS}/\\-]*${B}\\/?(?!@)`;
const URL_HTTP = re(`${B}((?:https?:(?:\\/{1,3}|[a-zA-Z0-9%])|${URL_TAIL}))`);
const URL_WWW = re(`${B}((?:www:(?:\\/{1,3}|[a-zA-Z0-9%])|${URL_TAIL}))`);
const NICKNAME = re(`@[${WORD_CHARS}${DIGIT_CHARS}]+${B}`);
const CJK = re("[\\u31c0-\\u31ef\\u31f0-\\u31ff\\u3200-\\u32ff\\u3300-\\u33ff\\u3400-\\u4dbf\\u4dc0-\\u4dff\\u4e00-\\u9fff]+");
const DASHES = re(
  "[\\u002D\\u058A\\u05BE\\u1400\\u1806\\u2010-\\u2015\\u2E17\\u2E1A\\u2E3A\\u2E3B\\u2E40\\u301C\\u3030\\u30A0\\uFE31\\uFE32\\uFE58\\uFE63\\uFF0D]+",
);
const IP_ADDRESS = re(`${D}{1,3}\\.${D}{1,3}\\.${D}{1,3}\\.${D}{1,3}`);
const ARTICLE_ID = re(`${D}:${D}${D}${S}+${END}`);
const FILE_EXTENSIONS = "(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)";
const BAD_PUNCT = re("[#®•©™&@·º½¾¿¡§~\\)\\(\\]\\[\\}\\{\\|\\\\\\/\\*]{1,}");

/** Rules applied in order: [pattern, replacement] (replacement uses JavaScript's $1). */
type Rule = readonly [RegExp, string];

const BEFORE_HTML: Rule[] = [
  [/<person>/g, "person"],
  [URL_HTTP, ""],
  [URL_WWW, ""],
];

const BEFORE_FTFY: Rule[] = [
  [NICKNAME, ""],
  [CJK, ""],
  [DASHES, "-"],
  [/[`´«»“”¨]/gu, '"'],
  [/[‘’]/gu, "'"],
  [/&quot;?/g, ""],
  [/&amp/g, ""],
  [IP_ADDRESS, " "],
  [ARTICLE_ID, ""],
  [/\\n/g, " "],
  [re(`#${D}{1,3}${B}`), ""],
  [re(`#${D}{5,}${B}`), ""],
  [re(`${B}${D}{6,}${B}`), ""],
  // Python's `\S+\.ext`. A start inside a run of non-spaces can only match if the run's start does (the greedy
  // `\S+` reaches the same candidates), so matching at run starts only gives the same result in linear time.
  [re(`(?<!${NOT_S})${NOT_S}+\\.${FILE_EXTENSIONS}`), ""],
  [/["']{2,}/g, '"'],
  [/[.]{2,}/g, " "],
  [BAD_PUNCT, " "],
  [re(`(?<!${S})${S}+\\.${S}+`), " "], // `\s+\.\s+`, matched at run starts only (as above)
];

const AFTER_FTFY: Rule[] = [
  [re(`${B}[a-zA-Z]{1,3}${D}{3,15}${B}`), ""],
  [re(`${B}[a-zA-Z]+${D}+[a-zA-Z]+${B}`), ""],
  [re(`${B}${D}+[a-zA-Z]+${D}+${B}`), ""],
  [re(`(worldwide${S}+)?(free${S}+)?shipping`), ""],
  [re(`(free${S})?download(${S}free)?`), ""],
  [re(`${B}click${B}${S}(?:for|on)${S}${W}+`), ""],
  [re(`${B}${FILE_EXTENSIONS}(${S}image[s]?)?`), ""],
  [re(`${B}page${S}+${D}+${B}`), ""],
  [re(`${B}${D}*[a-zA-Z]+${D}+[a-zA-Z]+${D}+[a-zA-Z${DIGIT_CHARS}]*${B}`), " "],
  [re(`${B}${D}+\\.?${D}*[xх×]${D}+\\.?${D}*${B}`), ""],
  [re(`${B}${S}+:${S}+`), ": "],
  [re(`(${NOT_D}[,\\./])${B}`), "$1 "],
  [re(`${S}+`), " "],
  [re(`^["']([^]+)["']${END}`), "$1"],
  [/^['_,\-:;]/u, ""],
  [re(`['_,\\-:\\-+]${END}`), ""],
  [re(`^\\.${NOT_S}+${END}`), ""],
];

function applyRules(text: string, rules: readonly Rule[]): string {
  return rules.reduce((t, [pattern, replacement]) => t.replace(pattern, replacement), text);
}

/**
 * The URL patterns (as in Python's `re`) try every word boundary inside a run of URL characters against the
 * rest of the run, so a run like "a.a.a.a..." costs boundaries × length steps (Python's `re` too: diffusers
 * takes minutes on such a prompt). Above this many steps the text is refused (call() then falls back to
 * lowercasing), which keeps cleaning within about 0.1 s for any text.
 */
export const MAX_URL_SCAN_STEPS = 8_000_000;
const URL_RUN = new RegExp(`[${URL_CHARS}]+`, "g");
const ALNUM_THEN_MARK = /[a-zA-Z0-9][.\-]|[.\-][a-zA-Z0-9]/g;

function checkUrlScanCost(text: string): void {
  let steps = 0;
  for (const [run] of text.matchAll(URL_RUN)) {
    if (run.length < 64) continue;
    steps += ((run.match(ALNUM_THEN_MARK)?.length ?? 0) + 1) * run.length;
    if (steps > MAX_URL_SCAN_STEPS) {
      throw new CleanCaptionUnsupportedError(`a run of ${run.length} URL characters with many word boundaries would take ` +
        `too long to search for URLs (over ${MAX_URL_SCAN_STEPS} steps)`, text);
    }
  }
}

/** One application of diffusers' `_clean_caption` (the pipeline applies it twice). */
export function cleanCaption(caption: string): string {
  let text = pythonLower(pythonStrip(unquotePlus(caption)));
  checkUrlScanCost(text);
  text = htmlText(applyRules(text, BEFORE_HTML));
  text = applyRules(text, BEFORE_FTFY);
  // "this-is-my-cute-cat": more than three dashes or underscores all become spaces.
  if ((text.match(/[-_]/g) ?? []).length > 3) text = text.replace(/[-_]/g, " ");
  text = htmlUnescape(htmlUnescape(fixText(text)));
  return pythonStrip(applyRules(text, AFTER_FTFY));
}
