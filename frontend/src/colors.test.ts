import { differenceCiede2000 } from "culori";
import { describe, expect, it } from "vitest";
import { PALETTE, classColor, classColorRgba, colorAt, setClassOrder } from "./colors";

const ciede2000 = differenceCiede2000();

function minimumDistance(colors: string[]): number {
  let least = Infinity;
  for (let i = 0; i < colors.length; i++) {
    for (let j = i + 1; j < colors.length; j++) least = Math.min(least, ciede2000(colors[i], colors[j]));
  }
  return least;
}

describe("class colours", () => {
  it("tell 20 classes apart: every pair at CIEDE2000 >= 10", () => {
    const names = Array.from({ length: 20 }, (_, i) => `class ${String(i).padStart(2, "0")}`);
    setClassOrder(names);
    const colors = names.map(classColor);
    expect(new Set(colors).size).toBe(20);
    expect(minimumDistance(colors)).toBeGreaterThanOrEqual(10);
  });

  it("past the palette, stay distinct from each other and from the palette", () => {
    const extra = Array.from({ length: 20 }, (_, i) => colorAt(PALETTE.length + i));
    expect(new Set([...PALETTE, ...extra]).size).toBe(40);
    expect(minimumDistance(extra)).toBeGreaterThanOrEqual(5);
  });

  it("follow the dataset's classes in name order, whatever order they come in", () => {
    setClassOrder(["truck", "car", "person"]);
    expect([classColor("car"), classColor("person"), classColor("truck")]).toEqual(PALETTE.slice(0, 3));
    setClassOrder(["person", "truck", "car", "car"]);
    expect(classColor("car")).toBe(PALETTE[0]);
    expect(classColor("bicycle")).toBe(PALETTE[3]); // unknown: numbered after the known ones
    expect(classColor("bicycle")).toBe(PALETTE[3]);
  });

  it("are the same colour for WebGL", () => {
    setClassOrder(["a", "b"]);
    expect(classColorRgba("b")).toEqual([255 / 255, 127 / 255, 14 / 255, 1]); // #ff7f0e
  });
});
