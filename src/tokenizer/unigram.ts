/**
 * Unigram language-model segmentation (SentencePiece's model, as the `tokenizers` library's `Unigram` runs it):
 * the best path through the lattice of vocabulary pieces, maximising the sum of piece scores.
 *
 * Details that decide ids, all as in `tokenizers`:
 * - every vocabulary entry is a candidate piece, special tokens included (they score 0.0, the best score, so
 *   normalized text that spells "</s>" becomes the EOS id);
 * - a character that starts no one-character piece gets an unknown node scored `min score - 10` (the minimum
 *   over the whole vocabulary);
 * - the forward pass visits start positions left to right and candidate pieces shortest first, and a later
 *   candidate replaces the best one at its end position only when strictly better (ties keep the earlier);
 * - consecutive unknown nodes are fused into one token (`fuse_unk`), which maps to the unknown id unless the
 *   fused text is itself a vocabulary entry.
 */

const UNKNOWN_PENALTY = 10;

/** A prefix tree over UTF-16 code units, stored as one map keyed by `node * 65536 + codeUnit`. */
class PieceTrie {
  private readonly edges = new Map<number, number>();
  /** Vocabulary id of the piece ending at each node, or -1. */
  private ids: number[] = [-1];

  insert(piece: string, id: number): void {
    let node = 0;
    for (let i = 0; i < piece.length; i++) {
      const key = node * 65536 + piece.charCodeAt(i);
      let next = this.edges.get(key);
      if (next === undefined) {
        next = this.ids.length;
        this.ids.push(-1);
        this.edges.set(key, next);
      }
      node = next;
    }
    this.ids[node] = id;
  }

  /** Calls `visit(end, id)` for each piece that starts at `start`, in increasing length. */
  forEachPrefix(text: string, start: number, visit: (end: number, id: number) => void): void {
    let node = 0;
    for (let i = start; i < text.length; i++) {
      const next = this.edges.get(node * 65536 + text.charCodeAt(i));
      if (next === undefined) return;
      node = next;
      const id = this.ids[node]!;
      if (id >= 0) visit(i + 1, id);
    }
  }
}

export class UnigramModel {
  private readonly trie = new PieceTrie();
  private readonly idsByPiece = new Map<string, number>();
  private readonly scores: Float64Array;
  private readonly unkScore: number;

  /** `vocab[i]` = [piece, score] of id i. */
  constructor(
    readonly vocab: ReadonlyArray<readonly [string, number]>,
    readonly unkId: number,
  ) {
    this.scores = new Float64Array(vocab.length);
    let minScore = Infinity;
    vocab.forEach(([piece, score], id) => {
      this.scores[id] = score;
      if (score < minScore) minScore = score;
      // Like a Rust HashMap built by insertion, the last id of a duplicated piece wins.
      this.idsByPiece.set(piece, id);
    });
    for (const [piece, id] of this.idsByPiece) this.trie.insert(piece, id);
    this.unkScore = minScore - UNKNOWN_PENALTY;
  }

  get size(): number {
    return this.vocab.length;
  }

  idOf(piece: string): number | undefined {
    return this.idsByPiece.get(piece);
  }

  pieceOf(id: number): string | undefined {
    return this.vocab[id]?.[0];
  }

  /** Ids of the best segmentation of `text` (one pre-tokenized word, already normalized). */
  tokenize(text: string): number[] {
    const n = text.length;
    if (n === 0) return [];
    const best = new Float64Array(n + 1);
    const from = new Int32Array(n + 1).fill(-1);
    const ids = new Int32Array(n + 1);
    for (let start = 0; start < n; ) {
      const charEnd = start + (text.codePointAt(start)! > 0xffff ? 2 : 1);
      const base = best[start]!;
      let hasSingleChar = false;
      this.trie.forEachPrefix(text, start, (end, id) => {
        const score = this.scores[id]! + base;
        if (from[end] === -1 || score > best[end]!) {
          best[end] = score;
          from[end] = start;
          ids[end] = id;
        }
        if (end === charEnd) hasSingleChar = true;
      });
      if (!hasSingleChar) {
        const score = this.unkScore + base;
        if (from[charEnd] === -1 || score > best[charEnd]!) {
          best[charEnd] = score;
          from[charEnd] = start;
          ids[charEnd] = this.unkId;
        }
      }
      start = charEnd;
    }
    return this.backtrack(text, from, ids);
  }

  private backtrack(text: string, from: Int32Array, ids: Int32Array): number[] {
    const out: number[] = [];
    let unkStart = -1;
    let unkEnd = -1;
    const flushUnknown = () => {
      if (unkStart < 0) return;
      out.push(this.idsByPiece.get(text.slice(unkStart, unkEnd)) ?? this.unkId);
      unkStart = -1;
    };
    for (let end = text.length; end > 0; ) {
      const start = from[end]!;
      if (ids[end] === this.unkId) {
        if (unkStart < 0) unkEnd = end;
        unkStart = start;
      } else {
        flushUnknown();
        out.push(ids[end]!);
      }
      end = start;
    }
    flushUnknown();
    return out.reverse();
  }
}
