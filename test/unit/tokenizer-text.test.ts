/** The pipeline's text preprocessing against Python 3.11 and diffusers (fixtures from tools/reference/tokenizer.py). */
import { strict as assert } from "assert";
import { ftfyIsBad, pythonLower, pythonStrip, textPreprocessing } from "../../src/tokenizer";
import { D, S, W } from "../../src/tokenizer/python-regex";
import { readTokenizerFixture } from "./tokenizer-fixtures";

const pyStr = readTokenizerFixture<{
  lower: Array<[number, string]>;
  isspace: number[];
  re: Record<"word" | "digit" | "space", Array<[number, number]>>;
}>("python-str.json.gz");
interface CleanCase {
  clean: string;
  covered: boolean;
}
const clean = readTokenizerFixture<{
  extra: Array<CleanCase & { text: string }>;
  corpus: CleanCase[];
  isBad: Array<[string, boolean]>;
}>("clean-caption.json.gz");
const cases = readTokenizerFixture<{ cases: Array<{ text: string; lower: string }> }>("cases.json.gz").cases;

function isSurrogate(cp: number): boolean {
  return cp >= 0xd800 && cp <= 0xdfff;
}

describe("Python str.lower() / str.strip()", () => {
  it("lowercases every code point as Python 3.11 does", () => {
    const expected = new Map(pyStr.lower);
    let wrong = 0;
    let first = "";
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (isSurrogate(cp)) continue;
      const c = String.fromCodePoint(cp);
      const want = expected.get(cp) ?? c;
      if (pythonLower(c) !== want) {
        wrong++;
        first ||= `U+${cp.toString(16)}: expected ${JSON.stringify(want)}, got ${JSON.stringify(pythonLower(c))}`;
      }
    }
    assert.equal(wrong, 0, `${wrong} code points differ; first ${first}`);
  });

  it("strips exactly the code points Python calls whitespace", () => {
    const space = new Set(pyStr.isspace);
    for (let cp = 0; cp <= 0xffff; cp++) {
      if (isSurrogate(cp)) continue;
      const c = String.fromCodePoint(cp);
      assert.equal(pythonStrip(`${c}${c}a${c}b${c}`), space.has(cp) ? `a${c}b` : `${c}${c}a${c}b${c}`, `U+${cp.toString(16)}`);
    }
  });

  for (const [name, cls] of [
    ["word", W],
    ["digit", D],
    ["space", S],
  ] as const) {
    it(`matches Python re's \\${name[0]} class on every code point`, () => {
      const rx = new RegExp(`^${cls}$`, "u");
      const inside = new Set<number>();
      for (const [a, b] of pyStr.re[name]) for (let cp = a; cp <= b; cp++) inside.add(cp);
      for (let cp = 0; cp <= 0x10ffff; cp++) {
        if (isSurrogate(cp)) continue;
        if (rx.test(String.fromCodePoint(cp)) !== inside.has(cp)) assert.fail(`U+${cp.toString(16)}`);
      }
    });
  }
});

describe("textPreprocessing (clean_caption=False)", () => {
  it(`equals diffusers' _text_preprocessing on all ${cases.length} prompts`, () => {
    for (const c of cases) assert.equal(textPreprocessing(c.text)[0], c.lower, JSON.stringify(c.text));
  });
  it("keeps one output per input", () => {
    assert.deepEqual(textPreprocessing(["  A ", "B"]), ["a", "b"]);
    assert.deepEqual(textPreprocessing("  A "), ["a"]);
  });
});

describe("ftfy's is_bad (mojibake heuristic)", () => {
  it(`agrees with ftfy on ${clean.isBad.length} strings over its character categories`, () => {
    const wrong = clean.isBad.filter(([text, bad]) => ftfyIsBad(text) !== bad);
    assert.equal(wrong.length, 0, `first: ${JSON.stringify(wrong[0])}`);
  });
});

describe("textPreprocessing (clean_caption=True)", () => {
  const all = [...clean.extra, ...clean.corpus.map((c, i) => ({ ...c, text: cases[i]!.text }))];

  it(`equals diffusers on every covered input, and refuses exactly the others (${all.length} inputs)`, () => {
    for (const c of all) {
      let out: string | Error;
      try {
        out = textPreprocessing(c.text, { cleanCaption: true })[0]!;
      } catch (e) {
        out = e as Error;
      }
      if (c.covered) {
        assert.equal(out, c.clean, `input ${JSON.stringify(c.text)}`);
      } else {
        assert.ok(out instanceof Error, `input ${JSON.stringify(c.text)} should be refused, got ${JSON.stringify(out)}`);
        assert.equal(out.name, "CleanCaptionUnsupportedError", out.message);
      }
    }
  });

  it("covers most of the corpus", () => {
    const covered = all.filter((c) => c.covered).length;
    assert.ok(covered / all.length > 0.6, `${covered} of ${all.length}`);
  });
});
