import { describe, expect, it } from "vitest";
import { DEFAULT_VIEW, formatView, parseView } from "./url";

describe("URL state", () => {
  it("round-trips a view", () => {
    const view = { ...DEFAULT_VIEW, dataset: "street", cls: "car", split: "val", map: 2, sample: 41, order: "desc" as const, sort: "uniqueness" };
    const text = formatView(view);
    expect(text).toBe("?dataset=street&split=val&class=car&sort=uniqueness&order=desc&map=2&sample=41");
    expect(parseView(text)).toEqual(view);
  });
  it("leaves defaults out and ignores junk", () => {
    expect(formatView(DEFAULT_VIEW)).toBe("");
    expect(parseView("?dataset=a%20b&map=x&sample=-1&order=sideways")).toEqual({
      ...DEFAULT_VIEW, dataset: "a b",
    });
  });
});
