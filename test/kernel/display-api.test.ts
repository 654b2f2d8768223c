/** The display API outside a kernel (CLI, plain node): console fallback, bundle rules, typed errors, inert comms. */
import * as assert from "assert";
import {
  CommError, display, DisplayError, getKernelBridge, isMimeBundle, jupyterDisplay, openComm, registerCommTarget, toMimeBundle,
} from "../../src/display/display";
import { currentCellSignal, InterruptedError, throwIfInterrupted } from "../../src/display/interrupt";

function captureLog(fn: () => void): string[] {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    fn();
  } finally {
    console.log = original;
  }
  return lines;
}

describe("display API outside a kernel", () => {
  before(() => assert.strictEqual(getKernelBridge(), undefined, "these tests need a process without a kernel"));

  it("is the Deno convention symbol", () => {
    assert.strictEqual(jupyterDisplay, Symbol.for("Jupyter.display"));
  });

  it("prints the text/plain form of a bundle", () => {
    assert.deepStrictEqual(captureLog(() => void display({ "text/plain": "a heatmap", "image/png": "iVBO" })), ["a heatmap"]);
    assert.deepStrictEqual(captureLog(() => void display({ "image/png": "iVBO" })), ["<display: image/png>"]);
  });

  it("builds bundles: binary values as base64, a text/plain fallback for Displayables", () => {
    const value = { [jupyterDisplay]: () => ({ "image/png": new Uint8Array([1, 2, 3]), "application/vnd.x+json": { a: [1] } }) };
    assert.deepStrictEqual(toMimeBundle(value), {
      "image/png": "AQID",
      "application/vnd.x+json": { a: [1] },
      "text/plain": "{ [Symbol(Jupyter.display)]: [Function: [Jupyter.display]] }",
    });
    assert.deepStrictEqual(toMimeBundle(new Map([[1, 2]])), { "text/plain": "Map(1) { 1 => 2 }" });
  });

  it("tells bundles from other objects", () => {
    assert.strictEqual(isMimeBundle({ "text/plain": "x" }), true);
    assert.strictEqual(isMimeBundle({ "text/plain": "x", other: 1 }), false);
    assert.strictEqual(isMimeBundle({}), false);
    assert.strictEqual(isMimeBundle(new (class { "text/plain" = "x" })()), false);
  });

  it("refuses a display method that returns something else than a bundle", () => {
    assert.throws(() => toMimeBundle({ [jupyterDisplay]: () => "text" }), (e: Error) => e instanceof DisplayError && /MIME bundle/.test(e.message));
  });

  it("refuses a displayable bundle key that is not a MIME type", () => {
    assert.throws(() => toMimeBundle({ [jupyterDisplay]: () => ({ "text/plain": "x", "image/png ": "y" }) }), DisplayError);
  });

  it("refuses update without displayId and an empty displayId", () => {
    assert.throws(() => display({ "text/plain": "x" }, { update: true }), (e: Error) => e instanceof DisplayError && /displayId/.test(e.message));
    assert.throws(() => display({ "text/plain": "x" }, { displayId: "" }), (e: Error) => e instanceof DisplayError && /non-empty/.test(e.message));
  });

  it("refuses openComm without a kernel", () => {
    assert.throws(() => openComm("pixart.attention"), (e: Error) => e instanceof CommError && /no Jupyter kernel/.test(e.message));
  });

  it("refuses a comm target without a name or handler", () => {
    assert.throws(() => registerCommTarget("", () => {}), (e: Error) => e instanceof CommError && /targetName/.test(e.message));
    assert.throws(() => registerCommTarget("t", undefined as never), (e: Error) => e instanceof CommError && /handler/.test(e.message));
  });

  it("gives a signal that never aborts", () => {
    const signal = currentCellSignal();
    assert.strictEqual(signal.aborted, false);
    assert.doesNotThrow(() => throwIfInterrupted());
  });

  it("throws a fresh InterruptedError for interrupts and other Error reasons as they are", () => {
    const reason = new InterruptedError("stop now");
    const controller = new AbortController();
    controller.abort(reason);
    assert.throws(() => throwIfInterrupted(controller.signal), (e: Error) => e instanceof InterruptedError && e !== reason && e.message === "stop now");
    const plain = new AbortController();
    plain.abort("no error object");
    assert.throws(() => throwIfInterrupted(plain.signal), InterruptedError);
    const custom = new RangeError("custom");
    const other = new AbortController();
    other.abort(custom);
    assert.throws(() => throwIfInterrupted(other.signal), (e: Error) => e === custom);
  });
});
