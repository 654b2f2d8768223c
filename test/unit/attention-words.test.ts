import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { CrossAttentionOptionError } from "../../src/models/pixart-transformer-2d-attention";
import { groupWords, resolveAttentionOptions, upsampleBicubic, wordMaps } from "../../src/pipeline/attention-maps";
import { T5Tokenizer } from "../../src/tokenizer/t5-tokenizer";
import { tinyConfigs } from "../helpers/reference";

interface GroupingCase {
  text: string;
  max_length: number;
  input_ids: number[];
  pieces: string[];
  words: { text: string; tokens: number[] }[];
}

describe("attention maps: words and their SentencePiece pieces", () => {
  const configs = tinyConfigs().filter((c) => fs.existsSync(path.join(c.dir, "attention.json")));
  it("has grouping cases from the reference tool", () => assert.ok(configs.length >= 3));

  for (const config of configs) {
    const cases = (JSON.parse(fs.readFileSync(path.join(config.dir, "attention.json"), "utf8")) as { grouping_cases: GroupingCase[] }).grouping_cases;

    it(`${config.name}: same pieces per word as transformers' word_ids() (multi-piece, unknown characters, truncation)`, async () => {
      const tokenizer = await T5Tokenizer.fromPretrained(path.join(config.pipeline, "tokenizer"));
      for (const c of cases) {
        assert.deepStrictEqual(tokenizer.encode(c.text, { maxLength: c.max_length, padding: "longest" }).inputIds[0], c.input_ids, c.text);
        const { words, cutWords } = groupWords(tokenizer, c.text, c.max_length);
        assert.deepStrictEqual(words.map((w) => w.tokens), c.words.map((w) => w.tokens), c.text);
        const all = c.text.split(/\s+/).filter((w) => w.length > 0);
        words.forEach((w, k) => {
          // transformers labels a cut word by the characters of its remaining pieces; ours keeps the whole word.
          assert.strictEqual(w.text, all[k], c.text);
          assert.strictEqual(w.truncated, tokenizer.tokenize(w.text).length > w.tokens.length, `${c.text}: ${w.text}`);
          if (!w.truncated) assert.strictEqual(w.text, c.words[k].text, c.text);
        });
        assert.deepStrictEqual(cutWords, all.slice(words.length), c.text);
      }
    });
  }

  it("the cases cover what they claim: multi-piece words, <unk> pieces, a word cut mid-way, whole words cut", async () => {
    const config = configs.find((c) => c.name === "tiny-square")!;
    const tokenizer = await T5Tokenizer.fromPretrained(path.join(config.pipeline, "tokenizer"));
    const cases = (JSON.parse(fs.readFileSync(path.join(config.dir, "attention.json"), "utf8")) as { grouping_cases: GroupingCase[] }).grouping_cases;
    const grouped = cases.map((c) => groupWords(tokenizer, c.text, c.max_length));
    assert.ok(grouped.some((g) => g.words.some((w) => w.tokens.length >= 3)), "a word of 3+ pieces");
    assert.ok(cases.some((c, i) => grouped[i].words.some((w) => w.tokens.some((t) => c.pieces[t] === "<unk>"))), "a word with an <unk> piece");
    assert.ok(grouped.some((g) => g.words.some((w) => w.truncated)), "a word cut mid-way");
    assert.ok(grouped.some((g) => g.cutWords.length > 0), "words cut entirely");
    assert.deepStrictEqual(groupWords(tokenizer, "", 300), { words: [], cutWords: [] });
    // EOS is nobody's piece: the last word ends before it.
    const g = groupWords(tokenizer, "a red circle", 300);
    assert.strictEqual(g.words[2].tokens[g.words[2].tokens.length - 1], tokenizer.tokenize("a red circle").length - 1);
  });
});

describe("attention maps: options, upsampling, word maps", () => {
  it("fills in every block and step, sorts, and refuses bad lists naming the option", () => {
    assert.deepStrictEqual(resolveAttentionOptions(true, 3, 2), { layers: [0, 1, 2], steps: [0, 1] });
    assert.deepStrictEqual(resolveAttentionOptions({ layers: [2, 0], steps: [1] }, 3, 2), { layers: [0, 2], steps: [1] });
    assert.throws(() => resolveAttentionOptions({ layers: [3] }, 3, 2), (e: Error) => e instanceof CrossAttentionOptionError && /attention.layers/.test(e.message));
    assert.throws(() => resolveAttentionOptions({ steps: [2] }, 3, 2), /attention.steps: .*\[0, 2\)/);
    assert.throws(() => resolveAttentionOptions({ steps: [] }, 3, 2), /attention.steps/);
    assert.throws(() => resolveAttentionOptions({ layers: [1, 1] }, 3, 2), /twice/);
    assert.throws(() => resolveAttentionOptions({ layers: [0.5] }, 3, 2), /integers/);
  });

  it("bicubic: a constant stays constant, same size is the identity, a ramp stays monotone", () => {
    const flat = upsampleBicubic(new Float32Array(6).fill(0.25), 1, 2, 3, 8, 12);
    assert.ok(flat.every((v) => Math.abs(v - 0.25) < 1e-7));
    const x = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
    assert.deepStrictEqual(Array.from(upsampleBicubic(x, 1, 3, 4, 3, 4)).map((v) => v.toFixed(6)), Array.from(x).map((v) => v.toFixed(6)));
    const ramp = upsampleBicubic(Float32Array.of(0, 1, 2, 3), 1, 1, 4, 1, 16);
    for (let i = 1; i < 16; i++) assert.ok(ramp[i] >= ramp[i - 1] - 1e-6, `ramp at ${i}`);
  });

  it("a word's map is the mean of its pieces, min-max normalised; a flat map is zero", () => {
    const tokens = Float32Array.of(0, 1, 2, 3, /* token 1 */ 2, 1, 0, 1, /* token 2 */ 5, 5, 5, 5);
    const out = wordMaps(tokens, 4, [{ text: "ab", tokens: [0, 1], truncated: false }, { text: "c", tokens: [2], truncated: false }]);
    // mean of tokens 0 and 1 = [1, 1, 1, 2] → [0, 0, 0, 1]
    assert.deepStrictEqual(Array.from(out), [0, 0, 0, 1, 0, 0, 0, 0]);
  });
});
