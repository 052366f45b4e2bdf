import { describe, expect, it } from "vitest";
import { fitArea, frameOf, toUnit } from "./mapView";

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

describe("map fit", () => {
  it("covers every point with a margin on each side", () => {
    const xs = Float32Array.from([-1, 0.2, 0.5]);
    const ys = Float32Array.from([0, -0.4, 0.4]);
    const area = fitArea(xs, ys, 0.1);
    expect(area.x).toBeCloseTo(-1 - 0.15, 5);
    expect(area.width).toBeCloseTo(1.5 * 1.2, 5);
    expect(area.y).toBeCloseTo(-0.4 - 0.08, 5);
    expect(area.height).toBeCloseTo(0.8 * 1.2, 5);
  });
  it("gives one point a small square", () => {
    const area = fitArea(Float32Array.from([0.3]), Float32Array.from([0.3]));
    expect(area.width).toBeGreaterThan(0);
    expect(area.height).toBeGreaterThan(0);
  });
});
