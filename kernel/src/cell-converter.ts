/**
 * tslab's converter (type check, declarations carried between cells, ES module → CommonJS) with fixes around it:
 * source rewrites (cell-source.ts), top-level await found in every position, module paths (module-paths.ts), and a
 * source map from the JavaScript that runs back to the cell's line and column.
 *
 * tslab's compiler options are fixed inside its converter, so the source map is obtained by asking for inline maps
 * while convert() runs: TypeScript reads `inlineSourceMap` from its options objects, and a getter on
 * Object.prototype answers `true` for options that do not set it themselves, only during that synchronous call.
 * Both of tslab's emits (the cell to ES module, then ES module to CommonJS) then carry a map, and the two compose.
 */
import { SourceMap } from "module";
import { Converter, ConvertResult, createConverter, Diagnostic } from "tslab/dist/converter";
import { Edits, hasTopLevelAwait, rewriteCell } from "./cell-source";
import { EnclosingPackage, installModulePaths } from "./module-paths";

export interface CellLocation {
  /** 0-based line and column in the cell as the user wrote it. */
  line: number;
  column: number;
}

export interface ConvertedCell extends ConvertResult {
  /** Maps a 0-based line and column of `output` to the cell; undefined for code the cell does not contain. */
  locate: (line: number, column: number) => CellLocation | undefined;
  /** Top-level `using` declarations were rewritten; the runner disposes them when the cell ends. */
  hasTopLevelUsing: boolean;
}

const inlineMapPattern = /^\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/gm;

let inlineMapsWanted = 0;

/** Installs the Object.prototype getter once; it answers true only inside withInlineSourceMaps(). */
function installInlineSourceMapSwitch(): void {
  if (Object.prototype.hasOwnProperty.call(Object.prototype, "inlineSourceMap")) return;
  Object.defineProperty(Object.prototype, "inlineSourceMap", {
    configurable: true,
    enumerable: false,
    get(): boolean | undefined {
      return inlineMapsWanted > 0 ? true : undefined;
    },
    set(this: object, value: unknown) {
      // Objects that set the property get their own, as without the getter.
      Object.defineProperty(this, "inlineSourceMap", { value, writable: true, enumerable: true, configurable: true });
    },
  });
}

function withInlineSourceMaps<T>(fn: () => T): T {
  inlineMapsWanted++;
  try {
    return fn();
  } finally {
    inlineMapsWanted--;
  }
}

/** Removes the inline map comments from `js`; returns the maps in emit order. */
function takeInlineMaps(js: string): { code: string; maps: SourceMap[] } {
  const maps: SourceMap[] = [];
  const code = js.replace(inlineMapPattern, (_m, b64: string) => {
    try {
      maps.push(new SourceMap(JSON.parse(Buffer.from(b64, "base64").toString("utf8"))));
    } catch {
      // an unreadable map only costs the locations
    }
    return "";
  });
  return { code: code.replace(/\n+$/, "\n"), maps };
}

/** tslab compiles `export {};\n` + cell: the cell starts on line 1 of what the first map points at. */
const cellPrefixLines = 1;

/**
 * Removes inline map comments from tslab's declaration output. tslab appends more declarations right after the
 * emitted .d.ts, with no newline after its map comment, so the end of the base64 text is found by decoding: the
 * shortest prefix that is a JSON object.
 */
export function stripDeclarationMaps(decl: string): string {
  const marker = "//# sourceMappingURL=data:application/json;base64,";
  let out = decl;
  for (let at = out.indexOf(marker); at >= 0; at = out.indexOf(marker, at)) {
    const start = at + marker.length;
    const b64 = /^[A-Za-z0-9+/=]*/.exec(out.slice(start))![0];
    let end = b64.length;
    for (let n = 4; n <= b64.length; n += 4) {
      const text = Buffer.from(b64.slice(0, n), "base64").toString("utf8");
      if (!text.trimEnd().endsWith("}")) continue;
      try {
        JSON.parse(text);
        end = n;
        break;
      } catch {
        // not the whole map yet
      }
    }
    out = out.slice(0, at) + "\n" + out.slice(start + end);
  }
  return out;
}

function composeLocator(maps: SourceMap[], edits: Edits): ConvertedCell["locate"] {
  if (maps.length < 2) return () => undefined;
  const [toCell, toEsm] = maps as [SourceMap, SourceMap];
  return (line, column) => {
    const esm = toEsm.findEntry(line, column) as { originalLine?: number; originalColumn?: number };
    if (esm.originalLine === undefined || esm.originalColumn === undefined) return undefined;
    const cell = toCell.findEntry(esm.originalLine, esm.originalColumn) as { originalLine?: number; originalColumn?: number };
    if (cell.originalLine === undefined || cell.originalColumn === undefined) return undefined;
    const cellLine = cell.originalLine - cellPrefixLines;
    if (cellLine < 0) return undefined;
    return { line: cellLine, column: edits.originalColumn(cellLine, cell.originalColumn) };
  };
}

function mapDiagnostic(d: Diagnostic, edits: Edits): Diagnostic {
  if (d.fileName) return d;
  return {
    ...d,
    start: { ...d.start, character: edits.originalColumn(d.start.line, d.start.character) },
    end: { ...d.end, character: edits.originalColumn(d.end.line, d.end.character) },
  };
}

export class CellConverter {
  private converter: Converter | undefined;
  readonly enclosingPackage: EnclosingPackage | undefined;

  constructor(rootDir: string) {
    this.enclosingPackage = installModulePaths(rootDir);
    installInlineSourceMapSwitch();
  }

  /** tslab's converter (creating it builds the TypeScript program: about a second). */
  get tslab(): Converter {
    this.converter ??= createConverter({ isJS: false, isBrowser: false });
    return this.converter;
  }

  convert(prevDecl: string, src: string): ConvertedCell {
    const rewritten = rewriteCell(src);
    const converter = this.tslab;
    const result = withInlineSourceMaps(() => converter.convert(prevDecl, rewritten.code));
    const diagnostics = result.diagnostics.map((d) => mapDiagnostic(d, rewritten.edits));
    if (diagnostics.length > 0 || result.output === undefined) {
      return { ...result, diagnostics, locate: () => undefined, hasTopLevelUsing: rewritten.hasTopLevelUsing };
    }
    if (result.declOutput !== undefined) result.declOutput = stripDeclarationMaps(result.declOutput);
    const { code, maps } = takeInlineMaps(result.output);
    return {
      ...result,
      diagnostics,
      output: code,
      // tslab only recognises `await` expressions; `for await` at the top level also needs the async wrapper.
      hasToplevelAwait: result.hasToplevelAwait || hasTopLevelAwait(rewritten.code),
      sideOutputs: result.sideOutputs?.map((s) => ({ ...s, data: takeInlineMaps(s.data).code })),
      locate: composeLocator(maps, rewritten.edits),
      hasTopLevelUsing: rewritten.hasTopLevelUsing,
    };
  }

  close(): void {
    this.converter?.close();
  }
}
