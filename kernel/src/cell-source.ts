/**
 * Source rewrites applied to a cell before tslab's converter sees it, for what that converter gets wrong:
 *
 * - Shorthand properties (`{ prompt }`) become `{ prompt: prompt }`. tslab rewrites a reference to an earlier cell's
 *   variable into `exports.prompt`, but not inside a shorthand property, so `{ prompt }` was a ReferenceError at run
 *   time. The long form means the same thing in every position (object literals, destructuring assignments with
 *   defaults), so all shorthands are expanded.
 * - `using` / `await using` declarations (TS 5.2; tslab's compiler is 5.0): `using x = e` becomes `const x = e`
 *   plus a registration that disposes `x` at the end of its block (a cell's top level: at the end of the cell).
 *
 * Insertions keep every line: only columns after an insertion move, and `Edits` maps them back for diagnostics and
 * stack frames.
 */
import * as ts from "@tslab/typescript-for-tslab";

interface Insertion {
  pos: number;
  text: string;
  /** Order among insertions at the same position (lower first). */
  order: number;
}

/** Positions in rewritten text → positions in the original cell (0-based line and column). */
export class Edits {
  /** Per original line: [original column, inserted length] sorted by column. */
  private readonly perLine = new Map<number, Array<[number, number]>>();

  constructor(original: string, insertions: readonly Insertion[]) {
    const lineStarts = [0];
    for (let i = 0; i < original.length; i++) if (original[i] === "\n") lineStarts.push(i + 1);
    for (const ins of insertions) {
      let line = 0;
      while (line + 1 < lineStarts.length && lineStarts[line + 1]! <= ins.pos) line++;
      const list = this.perLine.get(line) ?? [];
      list.push([ins.pos - lineStarts[line]!, ins.text.length]);
      this.perLine.set(line, list);
    }
  }

  /** The original column of `column` (rewritten text) on `line`; inside an insertion it snaps to its position. */
  originalColumn(line: number, column: number): number {
    let shift = 0;
    for (const [col, len] of this.perLine.get(line) ?? []) {
      if (column - shift <= col) break;
      if (column - shift < col + len) return col;
      shift += len;
    }
    return column - shift;
  }
}

export interface RewrittenCell {
  code: string;
  edits: Edits;
  /** The cell declares `using` resources at its top level (the runner disposes them when the cell ends). */
  hasTopLevelUsing: boolean;
}

/** The global the rewritten `using` declarations call (defined by the cell runner). */
export const usingHook = "__pixartUsing";

interface UsingSite {
  /** Offset of the `using` keyword (and of `await`, when `await using`). */
  keyword: number;
  awaitKeyword: number | undefined;
}

/** `using x =` / `await using x =` at the start of a statement, found with the scanner (TS 5.0 cannot parse them). */
function findUsingSites(src: string): UsingSite[] {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, src);
  const tokens: Array<{ kind: ts.SyntaxKind; pos: number; text: string; newLineBefore: boolean }> = [];
  // Brace depths at which a template literal's `${` is open: its `}` continues the template.
  const templates: number[] = [];
  let depth = 0;
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    if (kind === ts.SyntaxKind.OpenBraceToken) depth++;
    if (kind === ts.SyntaxKind.CloseBraceToken) {
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        kind = scanner.reScanTemplateToken(false);
        if (kind === ts.SyntaxKind.TemplateTail) templates.pop();
      } else depth--;
    }
    if (kind === ts.SyntaxKind.TemplateHead) templates.push(depth);
    if (kind === ts.SyntaxKind.SlashToken || kind === ts.SyntaxKind.SlashEqualsToken) {
      const prev = tokens[tokens.length - 1];
      if (!prev || ![ts.SyntaxKind.Identifier, ts.SyntaxKind.CloseParenToken, ts.SyntaxKind.CloseBracketToken, ts.SyntaxKind.NumericLiteral].includes(prev.kind)) {
        kind = scanner.reScanSlashToken();
      }
    }
    tokens.push({ kind, pos: scanner.getTokenPos(), text: scanner.getTokenText(), newLineBefore: scanner.hasPrecedingLineBreak() });
  }
  const statementStart = (i: number): boolean => {
    const prev = tokens[i - 1];
    return !prev || tokens[i]!.newLineBefore || [ts.SyntaxKind.SemicolonToken, ts.SyntaxKind.OpenBraceToken, ts.SyntaxKind.CloseBraceToken].includes(prev.kind);
  };
  const sites: UsingSite[] = [];
  for (let i = 0; i + 2 < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== ts.SyntaxKind.Identifier || t.text !== "using") continue;
    const name = tokens[i + 1]!;
    const after = tokens[i + 2]!;
    if (name.kind !== ts.SyntaxKind.Identifier || name.newLineBefore) continue;
    if (after.kind !== ts.SyntaxKind.EqualsToken && after.kind !== ts.SyntaxKind.ColonToken) continue;
    const prev = tokens[i - 1];
    if (prev && prev.kind === ts.SyntaxKind.AwaitKeyword && !t.newLineBefore && statementStart(i - 1)) {
      sites.push({ keyword: t.pos, awaitKeyword: prev.pos });
    } else if (statementStart(i)) {
      sites.push({ keyword: t.pos, awaitKeyword: undefined });
    }
  }
  return sites;
}

/** Same-length replacement of `using` by `const` (and of `await ` by spaces), so TS 5.0 can parse the cell. */
function replaceUsingKeywords(src: string, sites: readonly UsingSite[]): string {
  let out = src;
  for (const s of sites) {
    out = out.slice(0, s.keyword) + "const" + out.slice(s.keyword + 5);
    if (s.awaitKeyword !== undefined) out = out.slice(0, s.awaitKeyword) + "     " + out.slice(s.awaitKeyword + 5);
  }
  return out;
}

function declaredNames(list: ts.VariableDeclarationList): string[] {
  return list.declarations.flatMap((d) => (ts.isIdentifier(d.name) ? [d.name.text] : []));
}

export function rewriteCell(src: string): RewrittenCell {
  const sites = findUsingSites(src);
  const usingAt = new Map(sites.map((s) => [s.keyword, s]));
  const code = replaceUsingKeywords(src, sites);
  const file = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const insertions: Insertion[] = [];
  let order = 0;
  let hasTopLevelUsing = false;

  const visitUsing = (stmt: ts.VariableStatement, site: UsingSite): void => {
    const names = declaredNames(stmt.declarationList);
    const isAsync = site.awaitKeyword !== undefined;
    const block = stmt.parent;
    const list = `[${names.join(", ")}]`;
    if (ts.isSourceFile(block)) {
      hasTopLevelUsing = true;
      insertions.push({ pos: stmt.end, text: `; (globalThis as any).${usingHook}.cell(${list}, ${isAsync});`, order: order++ });
      return;
    }
    // Dispose at the end of the enclosing block, also when it throws: the rest of the block goes into try/finally.
    const close = ts.isBlock(block) || ts.isModuleBlock(block) ? block.end - 1 : stmt.end;
    const dispose = `${isAsync ? "await " : ""}(globalThis as any).${usingHook}.dispose(${list}, ${isAsync})`;
    insertions.push({ pos: stmt.end, text: "; try {", order: order++ });
    // Later `using`s close first: their finally must come before the earlier ones' at the same position.
    insertions.push({ pos: close, text: ` } finally { ${dispose} } `, order: -order });
  };

  const visit = (node: ts.Node): void => {
    if (ts.isShorthandPropertyAssignment(node)) {
      insertions.push({ pos: node.name.end, text: `: ${node.name.text}`, order: order++ });
    }
    if (ts.isVariableStatement(node)) {
      const site = usingAt.get(node.declarationList.getStart(file));
      if (site) visitUsing(node, site);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);

  insertions.sort((a, b) => a.pos - b.pos || a.order - b.order);
  let out = "";
  let last = 0;
  for (const ins of insertions) {
    out += code.slice(last, ins.pos) + ins.text;
    last = ins.pos;
  }
  out += code.slice(last);
  return { code: out, edits: new Edits(src, insertions), hasTopLevelUsing };
}

/** True when the cell awaits at its top level (an `await` or `for await` outside any function or class). */
export function hasTopLevelAwait(src: string): boolean {
  const file = ts.createSourceFile("cell.ts", src, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  let found = false;
  const visit = (node: ts.Node): void => {
    if (found) return;
    if (ts.isFunctionLike(node) || ts.isClassLike(node)) return;
    if (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier)) {
      found = true;
      return;
    }
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(file, visit);
  return found;
}
