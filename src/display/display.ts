/**
 * The notebook-facing display API: MIME bundles, objects that render themselves, display updates, clear_output and
 * comms. Inside the pixart-ts kernel everything goes over the Jupyter protocol; outside it (CLI, tests, plain node)
 * `display` prints the bundle's text/plain form and comms are inert.
 *
 * The kernel is found through a process-wide registry under `Symbol.for("pixart-ts.kernel")`, not through an import,
 * because notebooks may load this module from another build (dist/, a tslab side output) than the kernel did, and
 * because lower layers must not import kernel/.
 */
import { randomBytes } from "crypto";
import { inspect } from "util";
import { kernelRegistry, type KernelHooks, type KernelRegistry } from "../runtime/kernel-registry";
import { faceBundle } from "./faces";

/** The method key of objects that render themselves: the same convention as Deno's Jupyter kernel. */
export const jupyterDisplay: unique symbol = Symbol.for("Jupyter.display");

/** MIME type → value. Text types are strings, JSON types may be objects, binary types are base64 strings. */
export type MimeBundle = { [mimeType: string]: unknown };

/** An object that returns its own MIME bundle when shown in a notebook. */
export interface Displayable {
  [jupyterDisplay](): MimeBundle | Promise<MimeBundle>;
}

export interface DisplayOptions {
  /** Names the output so that a later call with `update: true` and the same id replaces it in place. */
  displayId?: string;
  /** Replace the output shown earlier under `displayId` instead of adding a new one. */
  update?: boolean;
  /** Per-MIME-type metadata (e.g. `{ "image/png": { width: 256 } }`). */
  metadata?: { [key: string]: unknown };
}

/** Bad input to the display API: which argument and what was expected. */
export class DisplayError extends Error {
  override name = "DisplayError";
}

/** A comm operation that cannot work, e.g. opening a comm outside a kernel or sending on a closed one. */
export class CommError extends Error {
  override name = "CommError";
}

/** What travels in a comm_open / comm_msg / comm_close message. */
export interface CommMessage {
  data: unknown;
  metadata: { [key: string]: unknown };
  buffers: Uint8Array[];
}

export interface CommSendOptions {
  metadata?: { [key: string]: unknown };
  buffers?: Uint8Array[];
}

/** One end of a Jupyter comm, opened by either side. */
export interface Comm {
  readonly commId: string;
  readonly targetName: string;
  readonly closed: boolean;
  send(data: unknown, options?: CommSendOptions): void;
  /** Called for each comm_msg from the frontend. Handlers may be async; errors go to the cell's stderr. */
  onMsg(handler: (msg: CommMessage) => void | Promise<void>): void;
  /** Called once when the frontend closes the comm (not when this side calls close()). */
  onClose(handler: (msg: CommMessage) => void | Promise<void>): void;
  close(data?: unknown, options?: CommSendOptions): void;
}

/** Called when the frontend opens a comm for a registered target. */
export type CommTargetHandler = (comm: Comm, open: CommMessage) => void | Promise<void>;

/** One display message as the kernel sends it. */
export interface DisplayMessage {
  data: MimeBundle;
  metadata: { [key: string]: unknown };
  transient: { display_id?: string };
}

/** What the kernel provides to this module. Implemented in kernel/; nothing else should implement it. */
export interface KernelBridge extends KernelHooks {
  sendDisplay(message: DisplayMessage, update: boolean): void;
  clearOutput(wait: boolean): void;
  registerCommTarget(name: string, handler: CommTargetHandler): void;
  unregisterCommTarget(name: string): void;
  openComm(targetName: string, data: unknown, options: CommSendOptions): Comm;
}

type Registry = KernelRegistry<KernelBridge, CommTargetHandler>;

function registry(): Registry {
  return kernelRegistry<KernelBridge, CommTargetHandler>();
}

/** The running kernel, or undefined outside one. */
export function getKernelBridge(): KernelBridge | undefined {
  return registry().bridge;
}

/** Called by the kernel at start-up (and with undefined at shutdown). Hands over comm targets registered earlier. */
export function setKernelBridge(bridge: KernelBridge | undefined): void {
  const reg = registry();
  reg.bridge = bridge;
  if (!bridge) return;
  for (const [name, handler] of reg.pendingTargets) bridge.registerCommTarget(name, handler);
  reg.pendingTargets.clear();
}

const mimeTypePattern = /^[\w\-+.]+\/[\w\-+.]+$/;

export function isDisplayable(value: unknown): value is Displayable {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { [jupyterDisplay]?: unknown })[jupyterDisplay] === "function"
  );
}

/** A plain object with at least one key, all of them MIME types. */
export function isMimeBundle(value: unknown): value is MimeBundle {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => mimeTypePattern.test(k));
}

/** Binary values become base64 strings (the Jupyter wire form of image/png etc.); everything else is kept. */
function normalizeBundle(bundle: MimeBundle, source: string): MimeBundle {
  const out: MimeBundle = {};
  for (const [mime, value] of Object.entries(bundle)) {
    if (!mimeTypePattern.test(mime)) {
      throw new DisplayError(`${source}: key ${JSON.stringify(mime)} is not a MIME type (expected "type/subtype")`);
    }
    if (value === undefined) continue;
    if (value instanceof Uint8Array) out[mime] = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
    else if (value instanceof ArrayBuffer) out[mime] = Buffer.from(value).toString("base64");
    else out[mime] = value;
  }
  return out;
}

function textFallback(value: unknown): string {
  return inspect(value, { depth: 2, breakLength: 100 });
}

function bundleFromDisplayable(value: Displayable, produced: unknown): MimeBundle {
  if (!isMimeBundle(produced)) {
    const name = (value as object).constructor?.name ?? "object";
    throw new DisplayError(
      `[Symbol.for("Jupyter.display")]() of ${name} returned ${textFallback(produced)}; expected a MIME bundle ` +
        `such as { "text/plain": "..." }`,
    );
  }
  const bundle = normalizeBundle(produced, `[Symbol.for("Jupyter.display")]() of ${(value as object).constructor?.name}`);
  if (!("text/plain" in bundle)) bundle["text/plain"] = textFallback(value);
  return bundle;
}

/**
 * The MIME bundle for any value, as a notebook shows it: the value's own bundle when it is Displayable (with a
 * text/plain fallback added when missing), otherwise util.inspect text. Async only when the value's display method is.
 */
export function toMimeBundle(value: unknown): MimeBundle | Promise<MimeBundle> {
  if (!isDisplayable(value)) return faceBundle(value) ?? { "text/plain": textFallback(value) };
  const produced = value[jupyterDisplay]();
  if (produced instanceof Promise) return produced.then((p) => bundleFromDisplayable(value, p));
  return bundleFromDisplayable(value, produced);
}

function bundleFor(valueOrBundle: unknown): MimeBundle | Promise<MimeBundle> {
  if (isMimeBundle(valueOrBundle) && !isDisplayable(valueOrBundle)) return normalizeBundle(valueOrBundle, "display()");
  return toMimeBundle(valueOrBundle);
}

function checkOptions(options: DisplayOptions): void {
  if (options.displayId !== undefined && (typeof options.displayId !== "string" || options.displayId === "")) {
    throw new DisplayError(`display(): options.displayId must be a non-empty string, got ${textFallback(options.displayId)}`);
  }
  if (options.update && options.displayId === undefined) {
    throw new DisplayError("display(): options.update needs options.displayId (the output to replace)");
  }
}

function emit(bundle: MimeBundle, options: DisplayOptions): void {
  const bridge = getKernelBridge();
  if (!bridge) {
    const text = bundle["text/plain"];
    const types = Object.keys(bundle).join(", ");
    console.log(typeof text === "string" ? text : `<display: ${types}>`);
    return;
  }
  const transient = options.displayId !== undefined ? { display_id: options.displayId } : {};
  bridge.sendDisplay({ data: bundle, metadata: options.metadata ?? {}, transient }, options.update === true);
}

/**
 * Shows a value (or a ready MIME bundle) as a display_data output of the running cell. With `displayId`, a later
 * call with `update: true` replaces that output in place (update_display_data), e.g. a preview refreshed every step.
 * The message is sent before this returns unless the value's display method is async; await the result in that case.
 */
export function display(valueOrBundle: unknown, options: DisplayOptions = {}): Promise<void> {
  checkOptions(options);
  const bundle = bundleFor(valueOrBundle);
  if (bundle instanceof Promise) return bundle.then((b) => emit(b, options));
  emit(bundle, options);
  return Promise.resolve();
}

/** A fresh id for `display(x, { displayId })`. */
export function newDisplayId(): string {
  return randomBytes(8).toString("hex");
}

/** Clears the running cell's output; with `wait`, only when the next output arrives (no flicker). */
export function clearOutput(options: { wait?: boolean } = {}): void {
  getKernelBridge()?.clearOutput(options.wait === true);
}

/**
 * Registers the handler for comms the frontend opens with this target name (e.g. the JupyterLab extension asking for
 * another attention layer). Registering the same name again replaces the handler. Outside a kernel the target is kept
 * and handed to the kernel if one starts in this process.
 */
export function registerCommTarget(targetName: string, handler: CommTargetHandler): void {
  if (typeof targetName !== "string" || targetName === "") {
    throw new CommError(`registerCommTarget(): targetName must be a non-empty string, got ${textFallback(targetName)}`);
  }
  if (typeof handler !== "function") {
    throw new CommError(`registerCommTarget(${JSON.stringify(targetName)}): handler must be a function`);
  }
  const bridge = getKernelBridge();
  if (bridge) bridge.registerCommTarget(targetName, handler);
  else registry().pendingTargets.set(targetName, handler);
}

export function unregisterCommTarget(targetName: string): void {
  registry().pendingTargets.delete(targetName);
  getKernelBridge()?.unregisterCommTarget(targetName);
}

/** Opens a comm from the kernel side; the frontend must have registered `targetName`. Needs a running kernel. */
export function openComm(targetName: string, data: unknown = {}, options: CommSendOptions = {}): Comm {
  const bridge = getKernelBridge();
  if (!bridge) {
    throw new CommError(`openComm(${JSON.stringify(targetName)}): no Jupyter kernel is running in this process`);
  }
  return bridge.openComm(targetName, data, options);
}
