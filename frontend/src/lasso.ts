// Which points a lasso (a closed polygon in data coordinates) holds.

export type Point = readonly [number, number];

/** The boxes a lasso on a map of objects holds, in the map's point order. */
export interface LassoBoxes {
  labelIds: Int32Array;
  sampleIds: Int32Array;
  classes: (string | null)[];
}

export interface Lasso {
  ids: Int32Array; // sample ids, ascending (on a map of objects: the samples holding the boxes)
  polygon: Point[]; // in map coordinates
  boxes?: LassoBoxes; // on a map of objects
}

/** Whether (x, y) is inside `polygon`, as a map point (float32 coordinates) would be. */
export function insidePolygon(x: number, y: number, polygon: readonly Point[]): boolean {
  return selectInside(Float32Array.of(x), Float32Array.of(y), polygon).length === 1;
}

/** Indices of the points inside `polygon`, testing the bounding box first. The polygon's edges
 * are kept in flat typed arrays: at 1M points this loop is the lasso's main cost. */
export function selectInside(
  xs: Float32Array,
  ys: Float32Array,
  polygon: readonly Point[],
): Uint32Array {
  const n = polygon.length;
  if (n < 3) return new Uint32Array(0);
  const px = new Float64Array(n), py = new Float64Array(n);
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    px[i] = polygon[i][0]; py[i] = polygon[i][1];
    minX = Math.min(minX, px[i]); maxX = Math.max(maxX, px[i]);
    minY = Math.min(minY, py[i]); maxY = Math.max(maxY, py[i]);
  }
  const out = new Uint32Array(xs.length);
  let found = 0;
  for (let k = 0; k < xs.length; k++) {
    const x = xs[k], y = ys[k];
    if (x < minX || x > maxX || y < minY || y > maxY) continue;
    // Even-odd rule: a ray from (x, y) to the right crosses the edges an odd number of times
    // when the point is inside. Written out here, not called: this loop is the hot one.
    let inside = false;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const yi = py[i], yj = py[j];
      if (yi > y !== yj > y && x < ((px[j] - px[i]) * (y - yi)) / (yj - yi) + px[i]) inside = !inside;
    }
    if (inside) out[found++] = k;
  }
  return out.slice(0, found);
}
