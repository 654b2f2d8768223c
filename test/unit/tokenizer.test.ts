/**
 * The T5 tokenizer against transformers 5.24 (fixtures from tools/reference/tokenizer.py): ids, masks and
 * decoded text for every prompt of the corpus, for a folder with spiece.model and for the folder that
 * transformers 5 saves (tokenizer.json), plus batches, truncation, padding and sentinels.
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as os from "os";
import { readSentencePieceModel, T5Tokenizer, toInt64Tensor } from "../../src/tokenizer";
import { PrecompiledCharsmap } from "../../src/tokenizer/precompiled-charsmap";
import { UnigramModel } from "../../src/tokenizer/unigram";
import { fixturesDir } from "../helpers/paths";
import { readTokenizerFixture, tokenizerFixturesDir as dir, transformers5TokenizerDir } from "./tokenizer-fixtures";

interface Encoded {
  ids: number[];
  decoded: string;
}
/** ids / decoded are transformers' from the spiece.model folder; the *Json fields appear where the tokenizer.json
 * folder gave something else. decoded is recorded for the hand-written prompts only. */
interface Case {
  text: string;
  ids: number[];
  idsJson?: number[];
  decoded?: string;
  decodedJson?: string;
  lower: string;
}
interface Variant {
  name: string;
  config: Record<string, unknown> | null;
  vocabSize: number;
  cases: Array<{ text: string } & Encoded>;
}
interface Fixture {
  meta: { maxLength: number; vocabSize: number };
  variants: Variant[];
  normalizer: Array<[string, string]>;
  unigram: { vocab: Array<[string, number]>; unkId: number; cases: Array<{ text: string; ids: number[] }> };
  sentinels: Record<string, number>;
  batches: {
    texts: string[];
    longest: { ids: number[][]; mask: number[][] };
    maxLength8: { ids: number[][]; mask: number[][] };
  };
  cases: Case[];
}

const fixture = readTokenizerFixture<Fixture>("cases.json.gz");
const MAX = fixture.meta.maxLength;

function describeMismatch(text: string, expected: number[], actual: number[]): string {
  let i = 0;
  while (i < expected.length && expected[i] === actual[i]) i++;
  return (
    `prompt ${JSON.stringify(text)}: first difference at position ${i}: ` +
    `expected ${JSON.stringify(expected.slice(i, i + 8))}, got ${JSON.stringify(actual.slice(i, i + 8))} ` +
    `(lengths ${expected.length} vs ${actual.length})`
  );
}

for (const format of ["spiece", "json"] as const) {
  describe(`T5Tokenizer from the ${format === "spiece" ? "spiece.model" : "tokenizer.json"} folder`, () => {
    let tok: T5Tokenizer;
    before(async () => {
      tok = await T5Tokenizer.fromPretrained(format === "spiece" ? path.join(dir, "spiece") : transformers5TokenizerDir());
    });

    it("reads the file transformers 5 reads", () => {
      assert.equal(path.basename(tok.source), format === "spiece" ? "spiece.model" : "tokenizer.json");
      assert.equal(tok.vocabSize, fixture.meta.vocabSize);
    });

    it(`gives transformers' ids and mask on all ${fixture.cases.length} prompts`, () => {
      const mismatches: string[] = [];
      for (const c of fixture.cases) {
        const expected = (format === "json" ? c.idsJson : undefined) ?? c.ids;
        const padded = [...expected, ...new Array<number>(MAX - expected.length).fill(0)];
        const mask = [...new Array<number>(expected.length).fill(1), ...new Array<number>(MAX - expected.length).fill(0)];
        const { inputIds, attentionMask } = tok.encode([c.text]);
        if (JSON.stringify(inputIds[0]) !== JSON.stringify(padded)) {
          mismatches.push(describeMismatch(c.text, padded, inputIds[0]!));
        } else {
          assert.deepEqual(attentionMask[0], mask, c.text);
        }
      }
      assert.equal(mismatches.length, 0, `${mismatches.length} mismatches; first: ${mismatches[0]}`);
    });

    it("decodes like transformers (skip_special_tokens=True)", () => {
      const withText = fixture.cases.filter((c) => c.decoded !== undefined);
      assert.ok(withText.length > 50);
      for (const c of withText) {
        const ids = (format === "json" ? c.idsJson : undefined) ?? c.ids;
        const decoded = (format === "json" ? c.decodedJson : undefined) ?? c.decoded;
        assert.equal(tok.decode(ids, { skipSpecialTokens: true }), decoded, c.text);
      }
    });

    it("maps the 100 sentinels like transformers", () => {
      for (const [token, id] of Object.entries(fixture.sentinels)) {
        assert.equal(tok.tokenToId(token), id, token);
        assert.deepEqual(tok.tokenize(token), [id], token);
      }
    });

    it("pads to the longest row, and truncates to a short max length keeping EOS", () => {
      const { texts, longest, maxLength8 } = fixture.batches;
      const a = tok.encode(texts, { padding: "longest" });
      assert.deepEqual(a.inputIds, longest.ids);
      assert.deepEqual(a.attentionMask, longest.mask);
      const b = tok.encode(texts, { maxLength: 8 });
      assert.deepEqual(b.inputIds, maxLength8.ids);
      assert.deepEqual(b.attentionMask, maxLength8.mask);
    });

    it("encodes the empty prompt as EOS then padding", () => {
      const { inputIds, attentionMask } = tok.encode([""]);
      assert.deepEqual(inputIds[0], [1, ...new Array(MAX - 1).fill(0)]);
      assert.deepEqual(attentionMask[0], [1, ...new Array(MAX - 1).fill(0)]);
    });
  });
}

describe("T5Tokenizer on the tiny pipeline fixtures (test/fixtures/tiny-*, tools/reference/make_fixtures.py)", () => {
  const folders = fs
    .readdirSync(fixturesDir)
    .filter((n) => n.startsWith("tiny-") && fs.existsSync(path.join(fixturesDir, n, "reference.json")));

  it("finds tiny pipeline fixtures", () => assert.ok(folders.length > 0));

  for (const name of folders) {
    it(`${name}: ids like transformers' tokenizer_cases`, async () => {
      const ref = JSON.parse(fs.readFileSync(path.join(fixturesDir, name, "reference.json"), "utf8")) as {
        tokenizer_cases: Array<{ text: string; input_ids: number[] }>;
      };
      const tok = await T5Tokenizer.fromPretrained(path.join(fixturesDir, name, "pipeline", "tokenizer"));
      assert.ok(ref.tokenizer_cases.length > 0);
      for (const c of ref.tokenizer_cases) {
        assert.deepEqual(tok.encode([c.text], { padding: "longest" }).inputIds[0], c.input_ids, c.text);
      }
    });
  }
});

describe("T5Tokenizer with other tokenizer_config.json contents next to spiece.model", () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "t5-variants-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  fixture.variants.forEach((v, i) => {
    it(`${v.name}: ids like transformers`, async () => {
      const folder = path.join(tmp, String(i));
      fs.mkdirSync(folder);
      fs.copyFileSync(path.join(dir, "spiece", "spiece.model"), path.join(folder, "spiece.model"));
      if (v.config !== null) fs.writeFileSync(path.join(folder, "tokenizer_config.json"), JSON.stringify(v.config));
      const tok = await T5Tokenizer.fromPretrained(folder);
      assert.equal(tok.vocabSize, v.vocabSize);
      for (const c of v.cases) {
        assert.deepEqual(tok.encode([c.text], { padding: "longest" }).inputIds[0], c.ids, c.text);
        assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded, c.text);
      }
    });
  });
});

describe("PrecompiledCharsmap", () => {
  it(`normalizes ${fixture.normalizer.length} grapheme stress strings like tokenizers' Precompiled normalizer`, async () => {
    const spm = await readSentencePieceModel(path.join(dir, "spiece", "spiece.model"));
    const charsmap = new PrecompiledCharsmap(spm.normalizerSpec.precompiledCharsmap, spm.file, "charsmap");
    const wrong = fixture.normalizer.filter(([text, normalized]) => charsmap.normalize(text) !== normalized);
    assert.equal(wrong.length, 0, `first: ${JSON.stringify(wrong[0])} got ${JSON.stringify(wrong[0] && charsmap.normalize(wrong[0][0]))}`);
  });
});

describe("UnigramModel", () => {
  it("breaks score ties and fuses unknowns like tokenizers' Unigram", () => {
    const { vocab, unkId, cases } = fixture.unigram;
    const model = new UnigramModel(vocab, unkId);
    for (const c of cases) assert.deepEqual(model.tokenize(c.text), c.ids, c.text);
  });
});

describe("toInt64Tensor", () => {
  it("flattens padded rows row-major", () => {
    const t = toInt64Tensor([
      [5, 1, 0],
      [7, 8, 1],
    ]);
    assert.deepEqual(t.dims, [2, 3]);
    assert.deepEqual(Array.from(t.data), [5n, 1n, 0n, 7n, 8n, 1n]);
  });
  it("refuses ragged rows", () => {
    assert.throws(() => toInt64Tensor([[1, 2], [3]]), { name: "TokenizerArgumentError" });
  });
});
