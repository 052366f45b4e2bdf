import { describe, expect, it } from "vitest";
import { PAGE_SIZE, pagesFor } from "./pages";

describe("pages for visible items", () => {
  it("cover the range and one page ahead", () => {
    expect(pagesFor(0, 50, 1_000_000)).toEqual([0, 1]);
    expect(pagesFor(PAGE_SIZE - 1, PAGE_SIZE + 3, 1_000_000, 0)).toEqual([0, 1]);
    expect(pagesFor(999_990, 999_999, 1_000_000)).toEqual([4999]);
  });
  it("are none for an empty list", () => {
    expect(pagesFor(0, 10, 0)).toEqual([]);
  });
});
