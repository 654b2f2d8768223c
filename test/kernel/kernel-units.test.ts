/** Kernel parts that need no running kernel: wire format, connection file, is_complete, history, pager, text offsets. */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConnectionFileError, endpoint, parseConnectionInfo, readConnectionFile } from "../../kernel/src/connection";
import { History } from "../../kernel/src/history";
import { isComplete } from "../../kernel/src/is-complete";
import { pagerQuery } from "../../kernel/src/pager";
import { codePointsToUtf16, utf16ToCodePoints } from "../../kernel/src/text";
import { decode, encode, Message, newHeader, Signer, WireError } from "../../kernel/src/wire";

const validConnection = {
  transport: "tcp",
  ip: "127.0.0.1",
  shell_port: 5001,
  control_port: 5002,
  iopub_port: 5003,
  stdin_port: 5004,
  hb_port: 5005,
  key: "secret",
  signature_scheme: "hmac-sha256",
};

function sampleMessage(): Message<object> {
  return {
    identities: [Buffer.from("client-1")],
    header: newHeader("execute_request", "s1", "u"),
    parent_header: {},
    metadata: { m: 1 },
    content: { code: "1 + 2" },
    buffers: [Buffer.from([1, 2, 3])],
  };
}

describe("kernel wire format", () => {
  const signer = new Signer("hmac-sha256", "secret");

  it("round-trips a message with identities and buffers", () => {
    const msg = sampleMessage();
    const back = decode(encode(msg, signer), signer);
    assert.deepStrictEqual(back.identities, msg.identities);
    assert.deepStrictEqual(back.header, msg.header);
    assert.deepStrictEqual(back.content, msg.content);
    assert.deepStrictEqual(back.metadata, msg.metadata);
    assert.deepStrictEqual(back.buffers, msg.buffers);
  });

  it("signs with HMAC-SHA256 over the four JSON frames (value from Python's hmac module)", () => {
    // python3 -c "import hmac,hashlib;print(hmac.new(b'secret',b'{}'*2+b'{\"a\":1}'+b'{}',hashlib.sha256).hexdigest())"
    const frames = ["{}", "{}", '{"a":1}', "{}"].map((s) => Buffer.from(s));
    assert.strictEqual(signer.sign(frames), "354ea2fe6e9f452210ceda486a05fcd52c38968f5ef6212af60e1dae7534f7f5");
  });

  it("rejects a wrong signature", () => {
    const frames = encode(sampleMessage(), new Signer("hmac-sha256", "other-key"));
    assert.throws(() => decode(frames, signer), (e: Error) => e instanceof WireError && /signature/.test(e.message));
  });

  it("rejects frames without the <IDS|MSG> delimiter", () => {
    assert.throws(() => decode([Buffer.from("x"), Buffer.from("{}")], signer), (e: Error) => e instanceof WireError && /delimiter/.test(e.message));
  });

  it("rejects a message with missing JSON frames", () => {
    const frames = encode(sampleMessage(), signer).slice(0, 4);
    assert.throws(() => decode(frames, signer), (e: Error) => e instanceof WireError && /JSON frames/.test(e.message));
  });

  it("rejects a header frame that is not JSON", () => {
    const parts = ["not json", "{}", "{}", "{}"].map((s) => Buffer.from(s));
    const frames = [Buffer.from("<IDS|MSG>"), Buffer.from(signer.sign(parts)), ...parts];
    assert.throws(() => decode(frames, signer), (e: Error) => e instanceof WireError && /header frame is not JSON/.test(e.message));
  });

  it("rejects a header without msg_type", () => {
    const parts = ['{"msg_id":"1"}', "{}", "{}", "{}"].map((s) => Buffer.from(s));
    const frames = [Buffer.from("<IDS|MSG>"), Buffer.from(signer.sign(parts)), ...parts];
    assert.throws(() => decode(frames, signer), (e: Error) => e instanceof WireError && /msg_type/.test(e.message));
  });

  it("rejects an unknown signature scheme", () => {
    assert.throws(() => new Signer("rsa-sha256", "k"), (e: Error) => e instanceof WireError && /rsa-sha256/.test(e.message));
  });

  it("skips signing with an empty key", () => {
    const unsigned = new Signer("hmac-sha256", "");
    assert.strictEqual(unsigned.sign([Buffer.from("{}")]), "");
    assert.deepStrictEqual(decode(encode(sampleMessage(), unsigned), unsigned).content, { code: "1 + 2" });
  });
});

describe("kernel connection file", () => {
  const isConnError = (pattern: RegExp) => (e: Error) => e instanceof ConnectionFileError && pattern.test(e.message);

  it("reads a valid file and builds endpoints", () => {
    const info = parseConnectionInfo(validConnection, "c.json");
    assert.strictEqual(endpoint(info, "shell"), "tcp://127.0.0.1:5001");
    assert.strictEqual(endpoint({ ...info, transport: "ipc", ip: "/tmp/k" }, "hb"), "ipc:///tmp/k-5005");
  });

  it("names the file when it cannot be read", () => {
    assert.throws(() => readConnectionFile("/nonexistent/conn.json"), isConnError(/\/nonexistent\/conn\.json/));
  });

  it("rejects a file that is not JSON", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "conn-"));
    const file = path.join(dir, "c.json");
    fs.writeFileSync(file, "{nope");
    try {
      assert.throws(() => readConnectionFile(file), isConnError(/not JSON/));
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it("rejects an unknown transport", () => {
    assert.throws(() => parseConnectionInfo({ ...validConnection, transport: "udp" }, "c.json"), isConnError(/transport/));
  });

  it("rejects a missing or invalid port", () => {
    assert.throws(() => parseConnectionInfo({ ...validConnection, hb_port: "x" }, "c.json"), isConnError(/hb_port/));
    assert.throws(() => parseConnectionInfo({ ...validConnection, shell_port: 70000 }, "c.json"), isConnError(/shell_port/));
  });

  it("rejects a key that is not a string", () => {
    assert.throws(() => parseConnectionInfo({ ...validConnection, key: 5 }, "c.json"), isConnError(/key/));
  });

  it("rejects a non-object", () => {
    assert.throws(() => parseConnectionInfo([], "c.json"), isConnError(/c\.json/));
  });
});

describe("kernel is_complete", () => {
  it("says complete for finished statements", () => {
    for (const code of ["1 + 2", "const x = 1;", "class A {\n  m() {\n    return 1;\n  }\n}", ""]) {
      assert.deepStrictEqual(isComplete(code), { status: "complete" }, code);
    }
  });

  it("says incomplete, with the next line's indent, for open blocks and expressions", () => {
    assert.deepStrictEqual(isComplete("function f() {"), { status: "incomplete", indent: "  " });
    assert.deepStrictEqual(isComplete("if (x) {\n  y()\n"), { status: "incomplete", indent: "  " });
    assert.deepStrictEqual(isComplete("const a = [1, 2,"), { status: "incomplete", indent: "" });
    assert.deepStrictEqual(isComplete("x = `abc"), { status: "incomplete", indent: "" });
  });

  it("says invalid for syntax errors before the end, unterminated strings, and unfinished code after a blank line", () => {
    for (const code of ["const = 5;", "let x = )", "}", '"abc', "function f() {\n\n"]) {
      assert.deepStrictEqual(isComplete(code), { status: "invalid" }, code);
    }
  });
});

describe("kernel history", () => {
  const history = new History();
  history.add(1, "const a = 1");
  history.add(2, "a + 1");
  history.setOutput(2, "2");
  history.add(3, "a + 1");
  history.add(4, "print()");

  it("returns the last n inputs (tail)", () => {
    assert.deepStrictEqual(history.query({ hist_access_type: "tail", n: 2, output: false }), [
      [1, 3, "a + 1"],
      [1, 4, "print()"],
    ]);
  });

  it("returns inputs with outputs", () => {
    assert.deepStrictEqual(history.query({ hist_access_type: "range", session: 1, start: 2, stop: 3, output: true }), [[1, 2, ["a + 1", "2"]]]);
  });

  it("searches with a glob, optionally unique and limited", () => {
    assert.strictEqual(history.query({ hist_access_type: "search", pattern: "a*" }).length, 2);
    assert.deepStrictEqual(history.query({ hist_access_type: "search", pattern: "a?+*", unique: true }), [[1, 3, "a + 1"]]);
    assert.deepStrictEqual(history.query({ hist_access_type: "search", pattern: "*", n: 1 }), [[1, 4, "print()"]]);
    assert.deepStrictEqual(history.query({ hist_access_type: "search", pattern: "print([)]*" }), [[1, 4, "print()"]]);
  });

  it("returns nothing for another session", () => {
    assert.deepStrictEqual(history.query({ hist_access_type: "range", session: 7, start: 1 }), []);
  });
});

describe("kernel pager and text offsets", () => {
  it("recognises ?name and name? only", () => {
    assert.deepStrictEqual(pagerQuery("?Math.max"), { code: "Math.max", cursor: 7 });
    assert.deepStrictEqual(pagerQuery("  console.log? "), { code: "console.log", cursor: 10 });
    for (const code of ["a ? b : c", "x?.y", "1 + 2", "?", "f()?"]) assert.strictEqual(pagerQuery(code), undefined, code);
  });

  it("converts between code points and UTF-16 offsets", () => {
    const text = "a😀b";
    assert.strictEqual(codePointsToUtf16(text, 2), 3);
    assert.strictEqual(utf16ToCodePoints(text, 3), 2);
    assert.strictEqual(codePointsToUtf16(text, 10), 4);
  });
});
