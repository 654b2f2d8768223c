/**
 * Jupyter counts cursor positions in Unicode code points (messaging spec 5.2); JavaScript strings index UTF-16 code
 * units. These convert between the two for text with characters outside the BMP (emoji, some CJK).
 */

export function codePointsToUtf16(text: string, codePoints: number): number {
  let units = 0;
  for (let cp = 0; cp < codePoints && units < text.length; cp++) {
    const code = text.codePointAt(units)!;
    units += code > 0xffff ? 2 : 1;
  }
  return units;
}

export function utf16ToCodePoints(text: string, units: number): number {
  return Array.from(text.slice(0, Math.max(0, units))).length;
}
