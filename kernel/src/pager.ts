/**
 * IPython-style help: a cell that is only `?name` or `name?` (a dotted name such as `Math.max`) shows the type and
 * documentation of `name` in the pager (an execute_reply `page` payload) instead of running anything.
 */

const dottedName = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

/** The name to inspect and the cursor (UTF-16 index of its last character), or undefined for ordinary code. */
export function pagerQuery(code: string): { code: string; cursor: number } | undefined {
  const text = code.trim();
  let name: string;
  if (text.startsWith("?")) name = text.slice(1).trim();
  else if (text.endsWith("?")) name = text.slice(0, -1).trim();
  else return undefined;
  if (!dottedName.test(name)) return undefined; // `a ? b : c`, optional chaining and other real code
  return { code: name, cursor: name.length - 1 };
}
