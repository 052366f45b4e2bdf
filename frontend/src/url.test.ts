import { describe, expect, it } from "vitest";
import { DEFAULT_VIEW, filterParams, formatView, parseView } from "./url";

describe("URL state", () => {
  it("round-trips a box filter and a highlighted box", () => {
    const view = { ...DEFAULT_VIEW, dataset: "d", objectIssue: "duplicate" as const, sample: 3, box: 17 };
    const text = formatView(view);
    expect(text).toBe("?dataset=d&sample=3&object_issue=duplicate&box=17");
    expect(parseView(text)).toEqual(view);
    expect(filterParams(view).toString()).toBe("object_issue=duplicate");
  });
  it("round-trips a view", () => {
    const view = { ...DEFAULT_VIEW, dataset: "street", cls: "car", split: "val", map: 2, sample: 41, order: "desc" as const, sort: "uniqueness" };
    const text = formatView(view);
    expect(text).toBe("?dataset=street&split=val&class=car&sort=uniqueness&order=desc&map=2&sample=41");
    expect(parseView(text)).toEqual(view);
  });
  it("round-trips duplicate, uniqueness, box and colour choices", () => {
    const view = {
      ...DEFAULT_VIEW, dataset: "d", duplicates: true, group: 7, uniquenessMin: 0.25,
      uniquenessMax: 0.9, boxes: "prediction" as const, color: "tag" as const,
    };
    const text = formatView(view);
    expect(text).toBe("?dataset=d&dups=1&group=7&umin=0.25&umax=0.9&boxes=prediction&color=tag");
    expect(parseView(text)).toEqual(view);
  });
  it("leaves defaults out and ignores junk", () => {
    expect(formatView(DEFAULT_VIEW)).toBe("");
    expect(parseView("?dataset=a%20b&map=x&sample=-1&order=sideways&umin=2&boxes=some&color=red")).toEqual({
      ...DEFAULT_VIEW, dataset: "a b",
    });
  });
  it("round-trips an evaluation, its filters, a confusion cell and the tab", () => {
    const view = {
      ...DEFAULT_VIEW, dataset: "d", evaluation: "yolo v8", outcome: "fp" as const,
      cell: ["Dead", ""] as [string, string], tab: "evaluation" as const, color: "errors" as const,
      sort: "eval.errors",
    };
    const text = formatView(view);
    expect(text).toBe(
      "?dataset=d&sort=eval.errors&color=errors&eval=yolo+v8&outcome=fp&cell=%5B%22Dead%22%2C%22%22%5D&tab=evaluation",
    );
    expect(parseView(text)).toEqual(view);
    expect(filterParams(view).toString()).toBe(
      "evaluation=yolo+v8&outcome=fp&confusion_gt=Dead&confusion_pred=",
    );
    expect(parseView("?cell=%5B1%5D&tab=x").cell).toBeNull();
    expect(filterParams({ ...DEFAULT_VIEW, quality: "dark" }).toString()).toBe("quality=dark");
    expect(parseView("?quality=blurry").quality).toBe("blurry");
    expect(formatView({ ...DEFAULT_VIEW, leaked: true, tab: "health" })).toBe("?tab=health&leaked=1");
    expect(filterParams({ ...DEFAULT_VIEW, leaked: true }).toString()).toBe("leaked=true");
    expect(filterParams({ ...DEFAULT_VIEW, labelIssue: true }).toString()).toBe("label_issue=true");
    expect(parseView("?label_issue=1").labelIssue).toBe(true);
  });
  it("gives the samples API's filter names", () => {
    const view = { ...DEFAULT_VIEW, cls: "car", duplicates: true, uniquenessMin: 0.5, sort: "filename" };
    expect(filterParams(view).toString()).toBe("class=car&has_duplicates=true&uniqueness_min=0.5");
  });
});
