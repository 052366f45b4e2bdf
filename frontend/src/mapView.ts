// Map coordinates <-> the [-1, 1] square the scatter plot draws in (aspect kept).

export interface Frame {
  midX: number;
  midY: number;
  scale: number;
}

export function frameOf(xs: Float32Array, ys: Float32Array): Frame {
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    minX = Math.min(minX, xs[i]); maxX = Math.max(maxX, xs[i]);
    minY = Math.min(minY, ys[i]); maxY = Math.max(maxY, ys[i]);
  }
  if (!xs.length) return { midX: 0, midY: 0, scale: 1 };
  const half = Math.max(maxX - minX, maxY - minY, 1e-9) / 2;
  return { midX: (minX + maxX) / 2, midY: (minY + maxY) / 2, scale: half * 1.05 };
}

export function toUnit(values: Float32Array, mid: number, scale: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - mid) / scale;
  return out;
}

export interface Area {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The rectangle the view zooms to so every point shows with a margin: the points' bounding
 * box grown by `padding` of its size on each side (at least a small square for one point). */
export function fitArea(xs: Float32Array, ys: Float32Array, padding = 0.06): Area {
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] < minX) minX = xs[i];
    if (xs[i] > maxX) maxX = xs[i];
    if (ys[i] < minY) minY = ys[i];
    if (ys[i] > maxY) maxY = ys[i];
  }
  if (!xs.length) return { x: -1, y: -1, width: 2, height: 2 };
  const width = Math.max(maxX - minX, 1e-3), height = Math.max(maxY - minY, 1e-3);
  return {
    x: minX - width * padding,
    y: minY - height * padding,
    width: width * (1 + 2 * padding),
    height: height * (1 + 2 * padding),
  };
}
