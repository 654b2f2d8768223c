/**
 * Reads a generated picture of the tiny shapes model back with pixel statistics, as tools/shapes/scenes.py's
 * read_scene does: background = the palette colour most of the border has, object colour = the commonest other
 * palette colour, position = the anchor nearest the centroid of the non-background pixels.
 */

export interface SceneVocabulary {
  /** Colour name → RGB 0..255, in the palette's order (ties go to the earlier colour, like numpy's argmax). */
  palette: Record<string, [number, number, number]>;
  /** Position name → anchor (x, y) as fractions of the side. */
  positions: Record<string, [number, number]>;
}

export interface SceneReading {
  colour: string;
  background: string;
  position: string;
}

export function readScene(rgb: ArrayLike<number>, width: number, height: number, vocab: SceneVocabulary): SceneReading {
  const colours = Object.entries(vocab.palette);
  const labels = new Int32Array(width * height);
  for (let p = 0; p < width * height; p++) {
    let best = 0;
    let bestDistance = Infinity;
    colours.forEach(([, c], i) => {
      const d = (rgb[p * 3] - c[0]) ** 2 + (rgb[p * 3 + 1] - c[1]) ** 2 + (rgb[p * 3 + 2] - c[2]) ** 2;
      if (d < bestDistance) { best = i; bestDistance = d; }
    });
    labels[p] = best;
  }
  const border = new Array<number>(colours.length).fill(0);
  for (let x = 0; x < width; x++) { border[labels[x]]++; border[labels[(height - 1) * width + x]]++; }
  for (let y = 0; y < height; y++) { border[labels[y * width]]++; border[labels[y * width + width - 1]]++; }
  const background = argmax(border);
  const counts = new Array<number>(colours.length).fill(0);
  let sx = 0, sy = 0, n = 0;
  for (let p = 0; p < labels.length; p++) {
    if (labels[p] === background) continue;
    counts[labels[p]]++;
    sx += p % width; sy += Math.floor(p / width); n++;
  }
  if (n === 0) return { colour: "none", background: colours[background][0], position: "none" };
  const cx = (sx / n + 0.5) / width, cy = (sy / n + 0.5) / height;
  let position = "";
  let nearest = Infinity;
  for (const [name, [ax, ay]] of Object.entries(vocab.positions)) {
    const d = (ax - cx) ** 2 + (ay - cy) ** 2;
    if (d < nearest) { position = name; nearest = d; }
  }
  return { colour: colours[argmax(counts)][0], background: colours[background][0], position };
}

function argmax(values: number[]): number {
  return values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
}
