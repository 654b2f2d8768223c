/** The connection file Jupyter writes for a kernel: transport, ip, five ports, key and signature scheme. */
import * as fs from "fs";

export interface ConnectionInfo {
  transport: "tcp" | "ipc";
  ip: string;
  shell_port: number;
  control_port: number;
  iopub_port: number;
  stdin_port: number;
  hb_port: number;
  key: string;
  signature_scheme: string;
}

export type Channel = "shell" | "control" | "iopub" | "stdin" | "hb";

export class ConnectionFileError extends Error {
  override name = "ConnectionFileError";
}

const portFields = ["shell_port", "control_port", "iopub_port", "stdin_port", "hb_port"] as const;

export function parseConnectionInfo(json: unknown, file: string): ConnectionInfo {
  if (json === null || typeof json !== "object") throw new ConnectionFileError(`${file}: expected a JSON object`);
  const o = json as { [k: string]: unknown };
  const transport = o["transport"] ?? "tcp";
  if (transport !== "tcp" && transport !== "ipc") {
    throw new ConnectionFileError(`${file}: transport must be "tcp" or "ipc", got ${JSON.stringify(transport)}`);
  }
  const ip = o["ip"] ?? "127.0.0.1";
  if (typeof ip !== "string" || ip === "") throw new ConnectionFileError(`${file}: ip must be a non-empty string`);
  for (const field of portFields) {
    const port = o[field];
    if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
      throw new ConnectionFileError(`${file}: ${field} must be an integer port (0-65535), got ${JSON.stringify(port)}`);
    }
  }
  const key = o["key"] ?? "";
  if (typeof key !== "string") throw new ConnectionFileError(`${file}: key must be a string`);
  const scheme = o["signature_scheme"] ?? "hmac-sha256";
  if (typeof scheme !== "string") throw new ConnectionFileError(`${file}: signature_scheme must be a string`);
  return { ...(o as unknown as ConnectionInfo), transport, ip, key, signature_scheme: scheme };
}

export function readConnectionFile(file: string): ConnectionInfo {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConnectionFileError(`cannot read connection file ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConnectionFileError(`${file}: not JSON: ${(e as Error).message}`);
  }
  return parseConnectionInfo(json, file);
}

/** ZeroMQ endpoint of a channel: tcp://ip:port, or for ipc the file `ip-port` as jupyter_client names it. */
export function endpoint(info: ConnectionInfo, channel: Channel): string {
  const port = info[`${channel}_port`];
  return info.transport === "tcp" ? `tcp://${info.ip}:${port}` : `ipc://${info.ip}-${port}`;
}
