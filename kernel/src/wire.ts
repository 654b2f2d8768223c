/**
 * The Jupyter wire protocol (messaging spec 5.3): multipart frames
 * [routing ids..., "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers...],
 * signed with HMAC over the four JSON frames.
 */
import { createHmac, randomUUID, timingSafeEqual } from "crypto";

export const protocolVersion = "5.3";

const delimiter = Buffer.from("<IDS|MSG>");

export interface MessageHeader {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
  /** Other keys sent by the client (e.g. subshell_id) are kept so the parent header echoes them. */
  [key: string]: unknown;
}

export type JsonObject = { [key: string]: unknown };

export interface Message<C extends object = JsonObject> {
  /** ZeroMQ routing ids of the sender (ROUTER sockets); empty on IOPub. */
  identities: Buffer[];
  header: MessageHeader;
  parent_header: Partial<MessageHeader>;
  metadata: JsonObject;
  content: C;
  buffers: Buffer[];
}

/** A malformed or wrongly signed incoming message. */
export class WireError extends Error {
  override name = "WireError";
}

/** HMAC signing as named by the connection file's signature_scheme ("hmac-sha256"); an empty key disables it. */
export class Signer {
  private readonly algorithm: string;

  constructor(
    scheme: string,
    private readonly key: string,
  ) {
    const match = /^hmac-([a-z0-9-]+)$/i.exec(scheme);
    if (!match) throw new WireError(`signature_scheme ${JSON.stringify(scheme)} is not supported (expected "hmac-<digest>")`);
    this.algorithm = match[1]!;
    createHmac(this.algorithm, "probe"); // throws for digests node does not know
  }

  sign(frames: Buffer[]): string {
    if (this.key === "") return "";
    const hmac = createHmac(this.algorithm, this.key);
    for (const f of frames) hmac.update(f);
    return hmac.digest("hex");
  }

  verify(signature: string, frames: Buffer[]): boolean {
    if (this.key === "") return true;
    const want = Buffer.from(this.sign(frames));
    const got = Buffer.from(signature);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

function parseJsonFrame(frame: Buffer | undefined, what: string): JsonObject {
  if (frame === undefined) throw new WireError(`message has no ${what} frame`);
  let value: unknown;
  try {
    value = JSON.parse(frame.toString("utf8"));
  } catch (e) {
    throw new WireError(`${what} frame is not JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new WireError(`${what} frame must be a JSON object`);
  }
  return value as JsonObject;
}

export function decode(frames: Buffer[], signer: Signer): Message {
  const at = frames.findIndex((f) => f.equals(delimiter));
  if (at < 0) throw new WireError("message has no <IDS|MSG> delimiter");
  const signature = frames[at + 1]?.toString("ascii") ?? "";
  const parts = frames.slice(at + 2, at + 6);
  if (parts.length < 4) throw new WireError(`message has ${parts.length} of the 4 JSON frames`);
  if (!signer.verify(signature, parts)) throw new WireError("message signature does not match (wrong key?)");
  const header = parseJsonFrame(parts[0], "header");
  if (typeof header["msg_type"] !== "string" || typeof header["msg_id"] !== "string") {
    throw new WireError("header needs string msg_type and msg_id");
  }
  return {
    identities: frames.slice(0, at),
    header: header as MessageHeader,
    parent_header: parseJsonFrame(parts[1], "parent_header") as Partial<MessageHeader>,
    metadata: parseJsonFrame(parts[2], "metadata"),
    content: parseJsonFrame(parts[3], "content"),
    buffers: frames.slice(at + 6),
  };
}

export function encode(msg: Message<object>, signer: Signer): Buffer[] {
  const parts = [msg.header, msg.parent_header, msg.metadata, msg.content].map((p) => Buffer.from(JSON.stringify(p)));
  return [...msg.identities, delimiter, Buffer.from(signer.sign(parts)), ...parts, ...msg.buffers];
}

export function newHeader(msgType: string, session: string, username: string): MessageHeader {
  return {
    msg_id: randomUUID(),
    session,
    username,
    date: new Date().toISOString(),
    msg_type: msgType,
    version: protocolVersion,
  };
}
