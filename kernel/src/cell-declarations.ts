/**
 * The declarations (a .d.ts text) that later cells are type-checked against. tslab replaces them only when a cell
 * succeeds, so a cell that threw lost everything it declared, even what ran before the throw. Here a failed cell
 * keeps the declarations whose values were assigned before it stopped; a name the cell declares but never reached
 * keeps its earlier declaration, if it had one (as in Python: what ran stays defined, what did not is unchanged).
 */
import * as ts from "@tslab/typescript-for-tslab";

/** Names declared by a compiled cell: tslab's CommonJS output starts with `exports.a = exports.b = void 0;`. */
export function cellValueNames(js: string): Set<string> {
  const names = new Set<string>();
  for (const line of js.split("\n")) {
    if (!/^exports\.[\w$]+ = (?:exports\.[\w$]+ = )*void 0;$/.test(line)) continue;
    for (const m of line.matchAll(/exports\.([\w$]+) =/g)) names.add(m[1]!);
  }
  return names;
}

/**
 * Removes the `exports.a = ... = void 0;` lines (kept as empty lines, so line numbers do not move): a name is then
 * set only when its declaration runs, and one the cell never reached keeps its earlier value.
 */
export function withoutExportResets(js: string): string {
  return js
    .split("\n")
    .map((line) => (/^exports\.[\w$]+ = (?:exports\.[\w$]+ = )*void 0;$/.test(line) ? "" : line))
    .join("\n");
}

function statementNames(stmt: ts.Statement): string[] | "types-only" {
  if (ts.isInterfaceDeclaration(stmt) || ts.isTypeAliasDeclaration(stmt)) return "types-only";
  if (ts.isVariableStatement(stmt)) return stmt.declarationList.declarations.flatMap((d) => (ts.isIdentifier(d.name) ? [d.name.text] : []));
  if (ts.isFunctionDeclaration(stmt) || ts.isClassDeclaration(stmt) || ts.isEnumDeclaration(stmt)) return stmt.name ? [stmt.name.text] : [];
  if (ts.isModuleDeclaration(stmt)) return ts.isIdentifier(stmt.name) && stmt.name.text !== "global" ? [stmt.name.text] : [];
  if (ts.isImportEqualsDeclaration(stmt)) return [stmt.name.text];
  if (ts.isImportDeclaration(stmt)) {
    const clause = stmt.importClause;
    if (!clause) return [];
    const names = clause.name ? [clause.name.text] : [];
    const b = clause.namedBindings;
    if (b && ts.isNamespaceImport(b)) names.push(b.name.text);
    if (b && ts.isNamedImports(b)) names.push(...b.elements.map((e) => e.name.text));
    return names;
  }
  return "types-only";
}

const parse = (text: string): ts.SourceFile => ts.createSourceFile("decl.d.ts", text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);

/** `stmt` reduced to the variable declarations `keep` accepts; undefined when none is left. */
function filterStatement(stmt: ts.Statement, keep: (name: string) => boolean): ts.Statement | undefined {
  const names = statementNames(stmt);
  if (names === "types-only") return stmt;
  if (ts.isVariableStatement(stmt)) {
    const kept = stmt.declarationList.declarations.filter((d) => !ts.isIdentifier(d.name) || keep(d.name.text));
    if (kept.length === 0) return undefined;
    if (kept.length === stmt.declarationList.declarations.length) return stmt;
    return ts.factory.updateVariableStatement(stmt, stmt.modifiers, ts.factory.updateVariableDeclarationList(stmt.declarationList, kept));
  }
  return names.length === 0 || names.some(keep) ? stmt : undefined;
}

/**
 * The declarations after a cell that failed at run time: `newDecl` (tslab's, as if the cell had succeeded) without
 * the names in `declared` that were not `assigned`, plus `oldDecl`'s declarations of those names.
 */
export function keepWhatRan(oldDecl: string, newDecl: string, declared: ReadonlySet<string>, assigned: ReadonlySet<string>): string {
  const notReached = (name: string): boolean => declared.has(name) && !assigned.has(name);
  const printer = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed });
  const out: string[] = [];
  const fresh = parse(newDecl);
  for (const stmt of fresh.statements) {
    const kept = filterStatement(stmt, (name) => !notReached(name));
    if (kept) out.push(printer.printNode(ts.EmitHint.Unspecified, kept, fresh));
  }
  const old = parse(oldDecl);
  for (const stmt of old.statements) {
    const names = statementNames(stmt);
    if (names === "types-only" || !names.some(notReached)) continue;
    const kept = filterStatement(stmt, notReached);
    if (kept) out.push(printer.printNode(ts.EmitHint.Unspecified, kept, old));
  }
  return out.join("\n") + "\n";
}
