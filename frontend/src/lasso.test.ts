import { describe, expect, it } from "vitest";
import { insidePolygon, selectInside, type Point } from "./lasso";

const square: Point[] = [[0, 0], [10, 0], [10, 10], [0, 10]];
// A "U": the notch between x 3..7 above y 3 is outside.
const u: Point[] = [[0, 0], [10, 0], [10, 10], [7, 10], [7, 3], [3, 3], [3, 10], [0, 10]];

describe("point in polygon", () => {
  it("tells inside from outside", () => {
    expect(insidePolygon(5, 5, square)).toBe(true);
    expect(insidePolygon(11, 5, square)).toBe(false);
    expect(insidePolygon(-0.1, 5, square)).toBe(false);
  });
  it("handles concave lassos", () => {
    expect(insidePolygon(5, 8, u)).toBe(false);
    expect(insidePolygon(1.5, 8, u)).toBe(true);
    expect(insidePolygon(5, 1, u)).toBe(true);
  });
  it("selects exactly the points inside", () => {
    const xs = Float32Array.from([5, 1.5, 5, 20, 8.5]);
    const ys = Float32Array.from([8, 8, 1, 1, 9]);
    expect(Array.from(selectInside(xs, ys, u))).toEqual([1, 2, 4]);
    expect(selectInside(xs, ys, [[0, 0], [1, 1]]).length).toBe(0);
  });
});
