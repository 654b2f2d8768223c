import * as assert from "assert";
import * as path from "path";
import { ConfigError } from "../../src/io/errors";
import { parsePythonJson, readJsonFile, readJsonObject } from "../../src/io/json";
import { fixturesDir } from "../helpers/paths";
import { makeTempDir, rejectsWith, removeTempDir, writeFile } from "../helpers/st-writer";

describe("io/json: config JSON as Python writes it", () => {
  let tmp: string;
  before(() => (tmp = makeTempDir()));
  after(() => removeTempDir(tmp));

  it("reads NaN / Infinity / -Infinity from a config saved by diffusers, and leaves those words in strings alone", async () => {
    const cfg = (await readJsonObject(path.join(fixturesDir, "io", "python-config.json"))) as any;
    assert.ok(Number.isNaN(cfg.not_a_number));
    assert.strictEqual(cfg.pos_inf, Infinity);
    assert.strictEqual(cfg.neg_inf, -Infinity);
    assert.strictEqual(cfg.nested.deep[0], 1.5);
    assert.ok(Number.isNaN(cfg.nested.deep[1]));
    assert.strictEqual(cfg.nested.deep[2], -Infinity);
    assert.strictEqual(cfg.nested.deep[3].x, Infinity);
    assert.strictEqual(cfg.scale, 0.18215);
    assert.strictEqual(cfg.text, "NaN, Infinity and -Infinity stay text");
    assert.deepStrictEqual(cfg.tokens, ["NaN", "-Infinity"]);
    assert.strictEqual(cfg._class_name, "NonFiniteConfig");
  });

  it("keeps tokens inside strings, including escaped quotes next to them", () => {
    const v = parsePythonJson('{"a": "NaN", "b": "say \\"Infinity\\"", "-Infinity": -Infinity, "c": [NaN]}', "x.json") as any;
    assert.strictEqual(v.a, "NaN");
    assert.strictEqual(v.b, 'say "Infinity"');
    assert.strictEqual(v["-Infinity"], -Infinity);
    assert.ok(Number.isNaN(v.c[0]));
  });

  it("agrees with JSON.parse on standard JSON", () => {
    const docs = [
      '{"a": [1, -2, 3.5e-3, 1E+2, 0, -0.0], "b": {"c": null, "d": true, "e": false}}',
      '"\\u00e9\\n\\t\\\\ \\ud83d\\ude00 é"',
      "[]",
      "{}",
      ' [ [ [ 12345678901234567890 ] ] ] ',
      '{"dup": 1, "dup": 2}',
    ];
    for (const d of docs) assert.deepStrictEqual(parsePythonJson(d, "x.json"), JSON.parse(d), d);
  });

  it("stores a __proto__ key as data, not as the prototype", () => {
    const v = parsePythonJson('{"__proto__": {"polluted": 1}}', "x.json") as any;
    assert.strictEqual(Object.getPrototypeOf(v), Object.prototype);
    assert.deepStrictEqual(Object.keys(v), ["__proto__"]);
    assert.strictEqual(({} as any).polluted, undefined);
  });

  it("reports malformed JSON as a ConfigError naming the file, line and column", async () => {
    const file = path.join(tmp, "bad", "config.json");
    writeFile(file, '{\n  "a": 1,\n  "b": 2\n  "c": 3\n}\n');
    const e = await rejectsWith(readJsonFile(file), ConfigError, [file, "line 4, column 3"]);
    assert.strictEqual(e.file, file);
    assert.strictEqual(e.line, 4);
    assert.strictEqual(e.column, 3);
  });

  it("rejects tokens Python never writes and other non-JSON", () => {
    const bad = ["nan", "-NaN", "Infinityx", "[1,]", "{'a': 1}", "{\"a\" 1}", "[1 2]", '"abc', '"a\\x"', "01", "1.", "", "[NaN", '"tab\there"'];
    for (const text of bad) {
      assert.throws(() => parsePythonJson(text, "cfg.json"), (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${JSON.stringify(text)}: ${String(e)}`);
        assert.ok(e.message.startsWith("cfg.json"), e.message);
        return true;
      }, JSON.stringify(text));
    }
  });

  it("refuses absurd nesting with a ConfigError instead of overflowing the stack", () => {
    assert.throws(() => parsePythonJson("[".repeat(100000), "deep.json"), ConfigError);
  });

  it("reports a missing file as a ConfigError naming it", async () => {
    const file = path.join(tmp, "nowhere", "config.json");
    await rejectsWith(readJsonFile(file), ConfigError, [file, "not found"]);
  });

  it("readJsonObject requires an object at the top level", async () => {
    const file = path.join(tmp, "array.json");
    writeFile(file, "[1, 2]");
    await rejectsWith(readJsonObject(file), ConfigError, [file, "expected a JSON object", "array"]);
  });
});
