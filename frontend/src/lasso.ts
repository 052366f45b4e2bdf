// Which points a lasso (a closed polygon in data coordinates) holds.

export type Point = readonly [number, number];

/** Even-odd rule: a ray from (x, y) to the right crosses the polygon's edges an odd number of
 * times when the point is inside. */
export function insidePolygon(x: number, y: number, polygon: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) {
      inside = !inside;
    }
  }
  return inside;
}

/** Indices of the points inside `polygon`, testing the bounding box first. */
export function selectInside(
  xs: Float32Array,
  ys: Float32Array,
  polygon: readonly Point[],
): Uint32Array {
  if (polygon.length < 3) return new Uint32Array(0);
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [px, py] of polygon) {
    minX = Math.min(minX, px); maxX = Math.max(maxX, px);
    minY = Math.min(minY, py); maxY = Math.max(maxY, py);
  }
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i], y = ys[i];
    if (x < minX || x > maxX || y < minY || y > maxY) continue;
    if (insidePolygon(x, y, polygon)) out.push(i);
  }
  return Uint32Array.from(out);
}
