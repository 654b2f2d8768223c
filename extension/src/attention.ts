import type { AttentionPayload } from "../../src/display/payloads";
import { el } from "./dom";
import type { Draw } from "./render";

export const drawAttention: Draw<AttentionPayload> = (host, p, ctx) => {
  host.append(el(ctx.doc, "div", "jp-pixart-title", `cross-attention maps ${p.width}×${p.height}`));
  return { ready: Promise.resolve(), resize() {}, dispose() {} };
};
