// The view's state lives in the URL, so a reload or a shared link shows the same view.

export type BoxKinds = "all" | "gt" | "prediction" | "none";
export type ColorBy = "class" | "split" | "tag" | "fp" | "fn" | "errors";
export const COUNT_COLORS = ["fp", "fn", "errors"] as const; // from an evaluation's counts
export type Outcome = "tp" | "fp" | "fn" | "error" | "confused";
export type Tab = "map" | "evaluation" | "health";

export interface ViewState {
  dataset: string | null;
  split: string | null;
  cls: string | null;
  tag: string | null;
  filename: string | null;
  duplicates: boolean;
  group: number | null;
  uniquenessMin: number | null;
  uniquenessMax: number | null;
  sort: string;
  order: "asc" | "desc";
  boxes: BoxKinds;
  color: ColorBy;
  map: number | null;
  sample: number | null;
  evaluation: string | null; // an evaluation's name: box outcomes, its filters and sorts
  outcome: Outcome | null;
  cell: [string, string] | null; // a confusion cell: ground truth, prediction ("" = background)
  tab: Tab;
  quality: string | null; // an image-quality issue (dark, blurry, ...)
  leaked: boolean; // in a duplicate group spanning splits
  labelIssue: boolean; // a label cleanlab finds likely wrong
  detectionIssue: boolean; // flagged by cleanlab's detection check against predictions
  objectIssue: ObjectIssue | null; // holding a box the object analysis flagged
  box: number | null; // the box (label id) the sample view shows highlighted
  cluster: number | null; // a density cluster of the map shown (`map`, else the default)
}

export type ObjectIssue = "outlier" | "duplicate";

export const DEFAULT_VIEW: ViewState = {
  dataset: null, split: null, cls: null, tag: null, filename: null,
  duplicates: false, group: null, uniquenessMin: null, uniquenessMax: null,
  sort: "id", order: "asc", boxes: "all", color: "class", map: null, sample: null,
  evaluation: null, outcome: null, cell: null, tab: "map", quality: null, leaked: false, labelIssue: false,
  objectIssue: null, box: null, detectionIssue: false, cluster: null,
};

const KEYS: Record<keyof ViewState, string> = {
  dataset: "dataset", split: "split", cls: "class", tag: "tag", filename: "q",
  duplicates: "dups", group: "group", uniquenessMin: "umin", uniquenessMax: "umax",
  sort: "sort", order: "order", boxes: "boxes", color: "color", map: "map", sample: "sample",
  evaluation: "eval", outcome: "outcome", cell: "cell", tab: "tab", quality: "quality", leaked: "leaked", labelIssue: "label_issue",
  objectIssue: "object_issue", box: "box", detectionIssue: "detection_issue", cluster: "cluster",
};

function cellOf(value: string | null): [string, string] | null {
  if (value === null) return null;
  try {
    const found = JSON.parse(value);
    return Array.isArray(found) && found.length === 2 && found.every((v) => typeof v === "string")
      ? [found[0], found[1]]
      : null;
  } catch {
    return null;
  }
}

function integer(value: string | null): number | null {
  if (value === null || !/^\d+$/.test(value)) return null;
  return Number(value);
}

function fraction(value: string | null): number | null {
  if (value === null || value === "") return null;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 && number <= 1 ? number : null;
}

function oneOf<T extends string>(value: string | null, allowed: readonly T[], fallback: T): T {
  return allowed.includes(value as T) ? (value as T) : fallback;
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
    duplicates: params.get(KEYS.duplicates) === "1",
    group: integer(text("group")),
    uniquenessMin: fraction(text("uniquenessMin")),
    uniquenessMax: fraction(text("uniquenessMax")),
    sort: text("sort") ?? DEFAULT_VIEW.sort,
    order: params.get("order") === "desc" ? "desc" : "asc",
    boxes: oneOf(text("boxes"), ["all", "gt", "prediction", "none"] as const, DEFAULT_VIEW.boxes),
    color: oneOf(text("color"), ["class", "split", "tag", ...COUNT_COLORS] as const, DEFAULT_VIEW.color),
    map: integer(text("map")),
    sample: integer(text("sample")),
    evaluation: text("evaluation"),
    outcome: params.has(KEYS.outcome)
      ? oneOf(text("outcome"), ["tp", "fp", "fn", "error", "confused"] as const, "error")
      : null,
    cell: cellOf(text("cell")),
    tab: oneOf(text("tab"), ["map", "evaluation", "health"] as const, DEFAULT_VIEW.tab),
    quality: text("quality"),
    leaked: params.get(KEYS.leaked) === "1",
    labelIssue: params.get(KEYS.labelIssue) === "1",
    objectIssue: params.has(KEYS.objectIssue)
      ? oneOf(text("objectIssue"), ["outlier", "duplicate"] as const, "outlier")
      : null,
    box: integer(text("box")),
    detectionIssue: params.get(KEYS.detectionIssue) === "1",
    cluster: integer(text("cluster")),
  };
}

/** The query string for a view: only what differs from the defaults, in a fixed order. */
export function formatView(view: ViewState): string {
  const params = new URLSearchParams();
  for (const key of Object.keys(KEYS) as (keyof ViewState)[]) {
    const value = view[key];
    if (value === null || value === DEFAULT_VIEW[key]) continue;
    const shown = typeof value === "boolean" ? "1" : Array.isArray(value) ? JSON.stringify(value) : String(value);
    params.set(KEYS[key], shown);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** The samples API's filter parameters for a view (no sort, no paging). */
export function filterParams(view: ViewState): URLSearchParams {
  const params = new URLSearchParams();
  if (view.split) params.set("split", view.split);
  if (view.cls) params.set("class", view.cls);
  if (view.tag) params.set("tag", view.tag);
  if (view.filename) params.set("filename", view.filename);
  if (view.duplicates) params.set("has_duplicates", "true");
  if (view.group !== null) params.set("duplicate_group", String(view.group));
  if (view.uniquenessMin !== null) params.set("uniqueness_min", String(view.uniquenessMin));
  if (view.uniquenessMax !== null) params.set("uniqueness_max", String(view.uniquenessMax));
  if (view.quality) params.set("quality", view.quality);
  if (view.leaked) params.set("leaked", "true");
  if (view.labelIssue) params.set("label_issue", "true");
  if (view.objectIssue) params.set("object_issue", view.objectIssue);
  if (view.detectionIssue) params.set("detection_issue", "true");
  if (view.cluster !== null) {
    params.set("cluster", String(view.cluster));
    if (view.map !== null) params.set("cluster_map", String(view.map));
  }
  if (view.evaluation) {
    params.set("evaluation", view.evaluation);
    if (view.outcome) params.set("outcome", view.outcome);
    if (view.cell) {
      params.set("confusion_gt", view.cell[0]);
      params.set("confusion_pred", view.cell[1]);
    }
  }
  return params;
}
