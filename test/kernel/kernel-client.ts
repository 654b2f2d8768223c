/**
 * A small Jupyter client for tests: starts the kernel from this build (node --expose-gc kernel/src/main.js) with its
 * own connection file and talks to it over real ZeroMQ sockets with signed messages.
 */
import { ChildProcess, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as zmq from "zeromq";
import { ConnectionInfo, endpoint } from "../../kernel/src/connection";
import { decode, encode, JsonObject, Message, newHeader, Signer } from "../../kernel/src/wire";

/** Compiled files of this build, found from this file's location (dist/test/kernel or .build/<name>/test/kernel). */
export const buildRoot = path.resolve(__dirname, "..", "..");
export const kernelMain = path.join(buildRoot, "kernel", "src", "main.js");
/** Absolute module path of the display API, for `import ... from` in test cells. */
export const displayModule = path.join(buildRoot, "src", "display", "display");
export const interruptModule = path.join(buildRoot, "src", "display", "interrupt");

/** A free TCP port on 127.0.0.1 (the OS picks it; closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface ExecuteResult {
  reply: Message;
  /** IOPub messages of this request between busy and idle, statuses excluded. */
  outputs: Message[];
}

export interface StartOptions {
  /** The kernel's working directory (the "notebook directory"). */
  cwd?: string;
  /** Seconds the kernel may take to answer kernel_info. */
  timeoutMs?: number;
  /** Extra environment variables for the kernel process. */
  env?: Record<string, string>;
}

type Waiter = { resolve: (m: Message) => void; reject: (e: Error) => void };

export class KernelClient {
  readonly session = randomBytes(8).toString("hex");
  readonly stderrChunks: string[] = [];
  private readonly replies = new Map<string, Waiter>();
  /** Replies that arrived before anyone asked for them, by parent msg_id. */
  private readonly unclaimed = new Map<string, Message>();
  private readonly iopubLog: Message[] = [];
  private iopubListeners: Array<(m: Message) => void> = [];
  private exited: Promise<number | null>;

  private constructor(
    readonly info: ConnectionInfo,
    readonly proc: ChildProcess,
    readonly dir: string,
    private readonly signer: Signer,
    private readonly shell: zmq.Dealer,
    private readonly control: zmq.Dealer,
    private readonly iopub: zmq.Subscriber,
  ) {
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.stderr?.on("data", (d: Buffer) => this.stderrChunks.push(d.toString()));
    void this.readReplies(shell);
    void this.readReplies(control);
    void this.readIopub();
  }

  static async start(options: StartOptions = {}): Promise<KernelClient> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-kernel-test-"));
    const info: ConnectionInfo = {
      transport: "tcp",
      ip: "127.0.0.1",
      shell_port: await freePort(),
      control_port: await freePort(),
      iopub_port: await freePort(),
      stdin_port: await freePort(),
      hb_port: await freePort(),
      key: randomBytes(16).toString("hex"),
      signature_scheme: "hmac-sha256",
    };
    const connectionFile = path.join(dir, "connection.json");
    fs.writeFileSync(connectionFile, JSON.stringify(info));
    const proc = spawn(process.execPath, ["--expose-gc", "--enable-source-maps", kernelMain, connectionFile], {
      cwd: options.cwd ?? dir,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const shell = new zmq.Dealer({ linger: 0 });
    const control = new zmq.Dealer({ linger: 0 });
    // No receive limit: a test that floods IOPub must see every message the kernel sent (ZeroMQ drops past the mark).
    const iopub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 0 });
    shell.connect(endpoint(info, "shell"));
    control.connect(endpoint(info, "control"));
    iopub.connect(endpoint(info, "iopub"));
    iopub.subscribe();
    const client = new KernelClient(info, proc, dir, new Signer(info.signature_scheme, info.key), shell, control, iopub);
    await client.waitReady(options.timeoutMs ?? 60000);
    return client;
  }

  /** Waits for the IOPub welcome (our subscription is live) and a kernel_info reply. */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.waitForIopub((m) => m.header.msg_type === "iopub_welcome", timeoutMs);
    await this.request("shell", "kernel_info_request", {}, Math.max(1000, deadline - Date.now()));
  }

  private async readReplies(sock: zmq.Dealer): Promise<void> {
    try {
      for await (const frames of sock) {
        const msg = decode(frames, this.signer);
        const id = msg.parent_header.msg_id;
        const waiter = id ? this.replies.get(id) : undefined;
        if (waiter && id) {
          this.replies.delete(id);
          waiter.resolve(msg);
        } else if (id) {
          this.unclaimed.set(id, msg);
        }
      }
    } catch {
      // socket closed
    }
  }

  private async readIopub(): Promise<void> {
    try {
      for await (const frames of this.iopub) {
        const msg = decode(frames, this.signer);
        this.iopubLog.push(msg);
        for (const listener of [...this.iopubListeners]) listener(msg);
      }
    } catch {
      // socket closed
    }
  }

  /** All IOPub messages received so far. */
  get iopubMessages(): readonly Message[] {
    return this.iopubLog;
  }

  waitForIopub(predicate: (m: Message) => boolean, timeoutMs = 30000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const done = (hit: Message): void => {
        this.iopubListeners = this.iopubListeners.filter((l) => l !== listener);
        clearTimeout(timer);
        resolve(hit);
      };
      // Each new message is tested once as it arrives (a rescan of the whole log per message made a 10,000-message
      // cell quadratic, and a client that slow is one ZeroMQ drops messages for).
      const listener = (m: Message): void => {
        if (predicate(m)) done(m);
      };
      const timer = setTimeout(() => {
        this.iopubListeners = this.iopubListeners.filter((l) => l !== listener);
        reject(new Error(`no matching IOPub message within ${timeoutMs} ms; kernel stderr:\n${this.stderrChunks.join("")}`));
      }, timeoutMs);
      const earlier = this.iopubLog.find(predicate);
      if (earlier) done(earlier);
      else this.iopubListeners.push(listener);
    });
  }

  /** Sends a request without waiting; returns its msg_id. */
  async send(channel: "shell" | "control", msgType: string, content: object, buffers: Buffer[] = []): Promise<string> {
    const header = newHeader(msgType, this.session, "test");
    const msg: Message<object> = { identities: [], header, parent_header: {}, metadata: {}, content, buffers };
    await (channel === "shell" ? this.shell : this.control).send(encode(msg, this.signer));
    return header.msg_id;
  }

  /** Sends a message with arbitrary frames (e.g. a wrong signature). */
  async sendRaw(frames: Buffer[]): Promise<void> {
    await this.shell.send(frames);
  }

  sign(frames: Buffer[]): string {
    return this.signer.sign(frames);
  }

  reply(msgId: string, timeoutMs = 30000): Promise<Message> {
    const early = this.unclaimed.get(msgId);
    if (early) {
      this.unclaimed.delete(msgId);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(msgId);
        reject(new Error(`no reply to ${msgId} within ${timeoutMs} ms; kernel stderr:\n${this.stderrChunks.join("")}`));
      }, timeoutMs);
      this.replies.set(msgId, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject,
      });
    });
  }

  async request(channel: "shell" | "control", msgType: string, content: object, timeoutMs = 30000): Promise<Message> {
    const header = newHeader(msgType, this.session, "test");
    const waiting = this.reply(header.msg_id, timeoutMs);
    const msg: Message<object> = { identities: [], header, parent_header: {}, metadata: {}, content, buffers: [] };
    await (channel === "shell" ? this.shell : this.control).send(encode(msg, this.signer));
    return waiting;
  }

  /** IOPub messages with `msgId` as parent, once its idle status has arrived. */
  async outputsOf(msgId: string, timeoutMs = 30000): Promise<Message[]> {
    const ofRequest = (m: Message): boolean => m.parent_header.msg_id === msgId;
    await this.waitForIopub((m) => ofRequest(m) && m.header.msg_type === "status" && m.content["execution_state"] === "idle", timeoutMs);
    return this.iopubLog.filter((m) => ofRequest(m) && m.header.msg_type !== "status");
  }

  async execute(code: string, options: JsonObject = {}, timeoutMs = 30000): Promise<ExecuteResult> {
    const id = await this.send("shell", "execute_request", {
      code,
      silent: false,
      store_history: true,
      user_expressions: {},
      allow_stdin: false,
      stop_on_error: true,
      ...options,
    });
    const reply = await this.reply(id, timeoutMs);
    return { reply, outputs: await this.outputsOf(id, timeoutMs) };
  }

  waitExit(timeoutMs = 10000): Promise<number | null> {
    return Promise.race([
      this.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("kernel did not exit")), timeoutMs).unref()),
    ]);
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Shuts the kernel down (shutdown_request, then SIGKILL if it lingers) and removes its files. */
  async close(): Promise<void> {
    if (this.alive) {
      try {
        await this.request("control", "shutdown_request", { restart: false }, 5000);
        await this.waitExit(5000);
      } catch {
        this.proc.kill("SIGKILL");
      }
    }
    for (const sock of [this.shell, this.control, this.iopub]) sock.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The text/plain or stream text of outputs, for assertions. */
export function streamText(outputs: Message[], name: "stdout" | "stderr"): string {
  return outputs
    .filter((m) => m.header.msg_type === "stream" && m.content["name"] === name)
    .map((m) => String(m.content["text"]))
    .join("");
}

export function ofType(outputs: Message[], msgType: string): Message[] {
  return outputs.filter((m) => m.header.msg_type === msgType);
}
