// The view's state lives in the URL, so a reload or a shared link shows the same view.

export interface ViewState {
  dataset: string | null;
  split: string | null;
  cls: string | null;
  tag: string | null;
  filename: string | null;
  sort: string;
  order: "asc" | "desc";
  map: number | null;
  sample: number | null;
}

export const DEFAULT_VIEW: ViewState = {
  dataset: null, split: null, cls: null, tag: null, filename: null,
  sort: "id", order: "asc", map: null, sample: null,
};

const KEYS: Record<keyof ViewState, string> = {
  dataset: "dataset", split: "split", cls: "class", tag: "tag", filename: "q",
  sort: "sort", order: "order", map: "map", sample: "sample",
};

function integer(value: string | null): number | null {
  if (value === null || !/^\d+$/.test(value)) return null;
  return Number(value);
}

export function parseView(search: string): ViewState {
  const params = new URLSearchParams(search);
  const text = (key: keyof ViewState) => params.get(KEYS[key]) || null;
  return {
    dataset: text("dataset"),
    split: text("split"),
    cls: text("cls"),
    tag: text("tag"),
    filename: text("filename"),
    sort: text("sort") ?? DEFAULT_VIEW.sort,
    order: params.get("order") === "desc" ? "desc" : "asc",
    map: integer(params.get("map")),
    sample: integer(params.get("sample")),
  };
}

/** The query string for a view: only what differs from the defaults, in a fixed order. */
export function formatView(view: ViewState): string {
  const params = new URLSearchParams();
  for (const key of Object.keys(KEYS) as (keyof ViewState)[]) {
    const value = view[key];
    if (value === null || value === DEFAULT_VIEW[key]) continue;
    params.set(KEYS[key], String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}
