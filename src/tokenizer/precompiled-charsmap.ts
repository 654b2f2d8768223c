/**
 * SentencePiece's precompiled normalization (`precompiled_charsmap`, e.g. nmt_nfkc), applied the way the
 * `tokenizers` library's `Precompiled` normalizer applies it, since that is what transformers 5 runs.
 *
 * Blob layout: a little-endian u32 byte length N of the trie, N/4 little-endian u32 units of a darts-clone
 * double-array trie whose keys are UTF-8 byte strings, then a pool of NUL-terminated UTF-8 replacements; a
 * key's value is the offset of its replacement in the pool.
 *
 * Application (tokenizers' rules, which differ from sentencepiece's own longest-match loop): the text is cut
 * into extended grapheme clusters. A cluster shorter than 6 UTF-8 bytes is looked up whole: if any key is a
 * prefix of it, the replacement of the SHORTEST such key replaces the WHOLE cluster (so "Ａ" + U+0301 becomes
 * "A"). Otherwise each code point of the cluster is looked up alone and replaced when it is a key.
 */
import { TokenizerFileError } from "./errors";

const GRAPHEME_LOOKUP_MAX_BYTES = 6;

/** UTF-8 length of the code point `cp`. */
function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

export class PrecompiledCharsmap {
  private readonly units: Uint32Array;
  private readonly pool: Uint8Array;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  /** Replacement strings by pool offset, decoded once. */
  private readonly replacements = new Map<number, string>();
  /** Normalized form of each ASCII character, filled on first use. */
  private readonly asciiReplacements: Array<string | undefined> = new Array(128);
  /** Segmenter for extended grapheme clusters (UAX #29, as the unicode-segmentation crate). */
  private readonly segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

  /** `file` and `field` only serve error messages. */
  constructor(blob: Uint8Array, file: string, field: string) {
    const bad = (problem: string) => new TokenizerFileError(file, `precompiled charsmap: ${problem}`, { field });
    if (blob.length < 4) throw bad(`${blob.length} bytes is too short`);
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieBytes = view.getUint32(0, true);
    if (trieBytes % 4 !== 0 || trieBytes === 0 || 4 + trieBytes > blob.length) {
      throw bad(`trie size ${trieBytes} does not fit the ${blob.length}-byte blob`);
    }
    this.units = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(4 + 4 * i, true);
    this.pool = blob.subarray(4 + trieBytes);
    try {
      this.decoder.decode(this.pool);
    } catch {
      throw bad("the replacement strings are not valid UTF-8");
    }
    const problem = this.checkTrie();
    if (problem !== undefined) throw bad(problem);
  }

  /**
   * Walks every key a lookup can reach (lookups read at most 5 UTF-8 bytes) and checks that each value is the
   * start of a replacement string in the pool. A garbage blob would otherwise load and normalize text in some
   * arbitrary way without a word. In a real trie each unit is one node; visiting more nodes than units means
   * the "trie" shares nodes, i.e. is not one.
   */
  private checkTrie(): string | undefined {
    const units = this.units;
    let visits = 0;
    const walk = (pos: number, depth: number): string | undefined => {
      if (depth === GRAPHEME_LOOKUP_MAX_BYTES) return undefined;
      for (let byte = 1; byte < 256; byte++) {
        const child = pos ^ byte;
        const unit = units[child];
        if (unit === undefined || (unit & 0x800000ff) !== byte) continue;
        if (++visits > units.length) return `the trie is not a tree (over ${units.length} nodes reached)`;
        const next = child ^ offsetOf(unit);
        if ((unit >>> 8) & 1) {
          const value = units[next];
          if (value === undefined) return `a key's value lies outside the trie (unit ${next})`;
          const offset = value & 0x7fffffff;
          if (offset >= this.pool.length || (offset > 0 && this.pool[offset - 1] !== 0)) {
            return `a key's value ${offset} is not the start of a replacement string (pool of ${this.pool.length} bytes)`;
          }
        }
        const problem = walk(next, depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    };
    return units.length === 0 ? "empty trie" : walk(offsetOf(units[0]!), 0);
  }

  /**
   * Pool offset of the shortest key that is a prefix of text[start, end) (as UTF-8), or -1. The darts unit
   * encodes: bit 8 = has a leaf child, bits 0-7 (+ bit 31) = label, bits 10-31 shifted by 0 or 8 (bit 9) =
   * offset to the children; a leaf's value is its low 31 bits.
   */
  private shortestPrefix(text: string, start: number, end: number): number {
    const units = this.units;
    let pos = offsetOf(units[0]!);
    for (let i = start; i < end; ) {
      const cp = text.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      const n = utf8Length(cp);
      for (let k = 0; k < n; k++) {
        const byte = utf8Byte(cp, n, k);
        pos ^= byte;
        const unit = units[pos];
        if (unit === undefined || (unit & 0x800000ff) !== byte) return -1;
        pos ^= offsetOf(unit);
        if ((unit >>> 8) & 1) return units[pos]! & 0x7fffffff;
      }
    }
    return -1;
  }

  private replacement(offset: number): string {
    let s = this.replacements.get(offset);
    if (s === undefined) {
      let end = offset;
      while (end < this.pool.length && this.pool[end] !== 0) end++;
      s = this.decoder.decode(this.pool.subarray(offset, end));
      this.replacements.set(offset, s);
    }
    return s;
  }

  /** The normalized text. */
  normalize(text: string): string {
    // Intl.Segmenter is the slow part, so it only sees the non-ASCII islands: between two ASCII characters
    // there is always a grapheme boundary (except inside CR LF), so the islands can be cut there.
    let out = "";
    for (let i = 0; i < text.length; ) {
      let j = i;
      while (j < text.length && text.charCodeAt(j) < 0x80) j++;
      // A printable ASCII character right before a non-ASCII one may start its grapheme (e.g. "e" + U+0301).
      const asciiEnd = j < text.length && j > i && text.charCodeAt(j - 1) >= 0x20 && text.charCodeAt(j - 1) !== 0x7f ? j - 1 : j;
      out += this.normalizeAscii(text, i, asciiEnd);
      if (asciiEnd === text.length) break;
      let k = j + 1;
      while (k < text.length && !(isAscii(text, k - 1) && isAscii(text, k) && !isCrLf(text, k - 1))) k++;
      for (const segment of graphemes(this.segmenter, text.slice(asciiEnd, k))) out += this.normalizeGrapheme(segment);
      i = k;
    }
    return out;
  }

  /** text[start, end), all ASCII: each character is a grapheme, except CR LF. */
  private normalizeAscii(text: string, start: number, end: number): string {
    let out = "";
    for (let i = start; i < end; i++) {
      if (isCrLf(text, i) && i + 1 < end) {
        out += this.normalizeGrapheme("\r\n");
        i++;
      } else {
        const c = text.charCodeAt(i);
        let r = this.asciiReplacements[c];
        if (r === undefined) {
          r = this.normalizeGrapheme(text[i]!);
          this.asciiReplacements[c] = r;
        }
        out += r;
      }
    }
    return out;
  }

  private normalizeGrapheme(segment: string): string {
    if (segmentUtf8Length(segment) < GRAPHEME_LOOKUP_MAX_BYTES) {
      const hit = this.shortestPrefix(segment, 0, segment.length);
      if (hit >= 0) return this.replacement(hit);
    }
    let out = "";
    for (let i = 0; i < segment.length; ) {
      const cpEnd = i + (segment.codePointAt(i)! > 0xffff ? 2 : 1);
      const hit = this.shortestPrefix(segment, i, cpEnd);
      out += hit >= 0 ? this.replacement(hit) : segment.slice(i, cpEnd);
      i = cpEnd;
    }
    return out;
  }
}

/** Code units given to Intl.Segmenter at a time. */
const SEGMENT_WINDOW = 1024;

/**
 * The grapheme clusters of `text`. V8's segment iterator takes time proportional to the whole string at every
 * step (40,000 emoji took 28 s), so the text goes through it in windows. The last cluster of a window may be
 * cut short by the window's end, so the next window starts at that cluster; every other boundary only
 * depends on the text before it and the character after it, which the window holds, and starting at a
 * true boundary keeps the regional-indicator pairing (an even count before it).
 */
export function* graphemes(segmenter: Intl.Segmenter, text: string): Generator<string> {
  let window = SEGMENT_WINDOW;
  for (let pos = 0; pos < text.length; ) {
    const end = Math.min(text.length, pos + window);
    const chunk = text.slice(pos, end);
    let last: string | undefined;
    let done = 0;
    for (const { segment } of segmenter.segment(chunk)) {
      if (last !== undefined) {
        yield last;
        done += last.length;
      }
      last = segment;
    }
    if (end === text.length) {
      if (last !== undefined) yield last;
      return;
    }
    // One cluster filled the whole window: read a wider one.
    if (done === 0) window *= 2;
    else {
      pos += done;
      window = SEGMENT_WINDOW;
    }
  }
}

function isAscii(text: string, i: number): boolean {
  return text.charCodeAt(i) < 0x80;
}

function isCrLf(text: string, i: number): boolean {
  return text.charCodeAt(i) === 0x0d && text.charCodeAt(i + 1) === 0x0a;
}

function offsetOf(unit: number): number {
  return (unit >>> 10) << ((unit & 0x200) >>> 6);
}

/** Byte k of the n-byte UTF-8 encoding of cp. */
function utf8Byte(cp: number, n: number, k: number): number {
  if (n === 1) return cp;
  if (k === 0) return (n === 2 ? 0xc0 : n === 3 ? 0xe0 : 0xf0) | (cp >> (6 * (n - 1)));
  return 0x80 | ((cp >> (6 * (n - 1 - k))) & 0x3f);
}

function segmentUtf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
