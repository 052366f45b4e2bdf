import { describe, expect, it } from "vitest";
import { frameOf, toUnit } from "./mapView";

describe("map frame", () => {
  it("fits the points in [-1, 1] keeping the aspect", () => {
    const xs = Float32Array.from([10, 30, 20]);
    const ys = Float32Array.from([0, 5, 10]);
    const f = frameOf(xs, ys);
    const ux = toUnit(xs, f.midX, f.scale);
    const uy = toUnit(ys, f.midY, f.scale);
    expect(Math.max(...ux.map(Math.abs))).toBeLessThan(1);
    expect(ux[1] - ux[0]).toBeCloseTo(2 * (uy[2] - uy[0]), 5); // x spans twice y
  });
});
