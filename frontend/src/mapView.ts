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
