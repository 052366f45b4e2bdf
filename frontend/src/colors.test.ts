import { describe, expect, it } from "vitest";
import { classColor, hashString } from "./colors";

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
