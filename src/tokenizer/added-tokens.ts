/**
 * Splitting text on added tokens (`</s>`, `<extra_id_N>`...), as the `tokenizers` AddedVocabulary does:
 * non-overlapping matches, scanning left to right, and at each position the longest token that starts there.
 */

/** A piece of text, or an added token's id. */
export type Segment = { text: string } | { id: number };

export class AddedTokenMatcher {
  /** Tokens grouped by first UTF-16 code unit, longest first. */
  private readonly byFirstUnit = new Map<number, Array<{ content: string; id: number }>>();

  constructor(tokens: ReadonlyArray<{ content: string; id: number }>) {
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      const key = t.content.charCodeAt(0);
      const list = this.byFirstUnit.get(key) ?? [];
      list.push(t);
      this.byFirstUnit.set(key, list);
    }
    for (const list of this.byFirstUnit.values()) list.sort((a, b) => b.content.length - a.content.length);
  }

  get isEmpty(): boolean {
    return this.byFirstUnit.size === 0;
  }

  /** `text` cut into plain pieces (never empty) and matched tokens, in order. */
  split(text: string): Segment[] {
    if (this.isEmpty) return text.length > 0 ? [{ text }] : [];
    const out: Segment[] = [];
    let plainStart = 0;
    for (let i = 0; i < text.length; ) {
      const match = this.byFirstUnit.get(text.charCodeAt(i))?.find((t) => text.startsWith(t.content, i));
      if (match === undefined) {
        i++;
        continue;
      }
      if (i > plainStart) out.push({ text: text.slice(plainStart, i) });
      out.push({ id: match.id });
      i += match.content.length;
      plainStart = i;
    }
    if (plainStart < text.length) out.push({ text: text.slice(plainStart) });
    return out;
  }
}
