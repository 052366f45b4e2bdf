import { describe, expect, it } from "vitest";
import { classColor, classColorRgba, hashString } from "./colors";

describe("class colours", () => {
  it("are the same for the same name, every time", () => {
    expect(classColor("circle")).toBe(classColor("circle"));
  });
  it("match the FNV-1a hash", () => {
    expect(hashString("")).toBe(0x811c9dc5);
    expect(hashString("a")).toBe(0xe40c292c);
  });
  it("differ between classes", () => {
    const names = ["circle", "square", "triangle", "diamond", "bar", "ring"];
    expect(new Set(names.map(classColor)).size).toBe(names.length);
    expect(classColor("circle")).toMatch(/^hsl\(\d+, 80%, (45|53|61)%\)$/);
  });
});

describe("class colours for WebGL", () => {
  it("convert HSL to RGB", () => {
    const [r, g, b, a] = classColorRgba("circle");
    const hue = hashString("circle") % 360;
    expect(a).toBe(1);
    for (const c of [r, g, b]) expect(c).toBeGreaterThanOrEqual(0);
    // The largest channel is the one nearest the hue (red 0, green 120, blue 240).
    const nearest = [0, 120, 240, 360].reduce((best, x) => (Math.abs(x - hue) < Math.abs(best - hue) ? x : best));
    const strongest = [r, g, b].indexOf(Math.max(r, g, b));
    expect([0, 1, 2, 0][[0, 120, 240, 360].indexOf(nearest)]).toBe(strongest);
  });
});
