/** The kernel_info_reply content: protocol and implementation versions and the language the frontend should use. */
import * as fs from "fs";
import * as path from "path";
import { versions } from "tslab/dist/public";
import { protocolVersion } from "./wire";

export const implementationName = "pixart-ts";

/** The version of the package this kernel was built from (the nearest package.json above this file). */
function packageVersion(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (!fs.existsSync(file)) continue;
    const version = (JSON.parse(fs.readFileSync(file, "utf8")) as { version?: unknown }).version;
    if (typeof version === "string") return version;
  }
  return "0.0.0";
}

export function kernelInfo(): object {
  return {
    status: "ok",
    protocol_version: protocolVersion,
    implementation: implementationName,
    implementation_version: packageVersion(),
    language_info: {
      name: "typescript",
      version: versions.typescript,
      mimetype: "text/typescript",
      file_extension: ".ts",
      pygments_lexer: "typescript",
      codemirror_mode: "typescript",
      nbconvert_exporter: "script",
    },
    banner: `pixart-ts TypeScript kernel (TypeScript ${versions.typescript} via tslab ${versions.tslab}, Node ${versions.node})`,
    debugger: false,
    help_links: [
      { text: "TypeScript handbook", url: "https://www.typescriptlang.org/docs/handbook/intro.html" },
      { text: "Node.js API", url: "https://nodejs.org/docs/latest-v20.x/api/" },
    ],
  };
}
