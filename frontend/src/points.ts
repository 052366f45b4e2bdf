// The map's points as the server sends them: an Arrow IPC stream with sample_id (int32),
// x, y (float32), class (uint16), split (uint8) and tag (uint16) codes, and a JSON legend of
// the codes in the schema metadata (`visor:legend`, code 0 = none). A map of objects also has
// label_id (int32): a point per box, its sample's id beside it.
import { tableFromIPC } from "apache-arrow";
import type { ColorBy } from "./url";

export interface MapPoints {
  count: number;
  sampleIds: Int32Array;
  x: Float32Array;
  y: Float32Array;
  classCode: Uint16Array;
  splitCode: Uint8Array;
  tagCode: Uint16Array;
  labelIds: Int32Array | null; // a map of objects: each point's box
  legend: Record<ColorBy, (string | null)[]>;
}

export function decodePoints(bytes: Uint8Array): MapPoints {
  const table = tableFromIPC(bytes);
  const column = <T>(name: string): T => {
    const vector = table.getChild(name);
    if (vector === null) throw new Error(`points: no column ${name}`);
    return vector.toArray() as T;
  };
  const legendText = table.schema.metadata.get("visor:legend");
  const legend = { class: [null], split: [null], tag: [null], ...(legendText ? JSON.parse(legendText) : {}) };
  return {
    count: table.numRows,
    sampleIds: column<Int32Array>("sample_id"),
    x: column<Float32Array>("x"),
    y: column<Float32Array>("y"),
    classCode: column<Uint16Array>("class"),
    splitCode: column<Uint8Array>("split"),
    tagCode: table.getChild("tag") ? column<Uint16Array>("tag") : new Uint16Array(table.numRows),
    labelIds: table.getChild("label_id") ? column<Int32Array>("label_id") : null,
    legend,
  };
}

/** Whether two fetches of a map put the same points in the same places (a tag or an edit
 * changes codes, not positions): then the plot already drawn is kept, with its zoom. */
export function samePlace(a: MapPoints, b: MapPoints): boolean {
  const equal = (u: ArrayLike<number> | null, v: ArrayLike<number> | null) => {
    if (u === null || v === null) return u === v;
    if (u.length !== v.length) return false;
    for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
    return true;
  };
  return a.count === b.count && equal(a.x, b.x) && equal(a.y, b.y) && equal(a.sampleIds, b.sampleIds)
    && equal(a.labelIds, b.labelIds);
}

/** Each point's code for the chosen colouring. */
export function codesFor(points: MapPoints, by: ColorBy): Uint16Array | Uint8Array {
  return by === "class" ? points.classCode : by === "split" ? points.splitCode : points.tagCode;
}

/** 1 for the points whose sample is in `matched`, else 0. Both id lists ascending (a merge). */
export function matchMask(sampleIds: Int32Array, matched: Int32Array): Uint8Array {
  const mask = new Uint8Array(sampleIds.length);
  let j = 0;
  for (let i = 0; i < sampleIds.length; i++) {
    while (j < matched.length && matched[j] < sampleIds[i]) j++;
    if (j < matched.length && matched[j] === sampleIds[i]) mask[i] = 1;
  }
  return mask;
}

/** 1 for the points whose box is in `chosen` (label ids, ascending), else 0. */
export function boxMask(labelIds: Int32Array, chosen: Int32Array): Uint8Array {
  const mask = new Uint8Array(labelIds.length);
  for (let i = 0; i < labelIds.length; i++) {
    let lo = 0, hi = chosen.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (chosen[mid] < labelIds[i]) lo = mid + 1;
      else hi = mid;
    }
    if (lo < chosen.length && chosen[lo] === labelIds[i]) mask[i] = 1;
  }
  return mask;
}

export async function fetchPoints(dataset: string, mapId: number | "default"): Promise<MapPoints> {
  const url = `/api/datasets/${encodeURIComponent(dataset)}/maps/${mapId}/points`;
  const response = await fetch(url);
  if (response.status === 204) throw new Error("no map yet");  // the default map, before one is made
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return decodePoints(new Uint8Array(await response.arrayBuffer()));
}

/** The ids (ascending) of the samples matching the samples API's filter parameters. */
export async function fetchMatching(dataset: string, filters: string): Promise<Int32Array> {
  const url = `/api/datasets/${encodeURIComponent(dataset)}/samples/ids?${filters}`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return new Int32Array(await response.arrayBuffer());
}

/** The buckets of a per-sample error count on the map, and their colours (a sequential ramp
 * from pale to dark red; grey: not evaluated). Code 0 is "not evaluated". */
export const COUNT_BUCKETS: { name: string; from: number; rgba: [number, number, number, number] }[] = [
  { name: "0", from: 0, rgba: [0.85, 0.88, 0.92, 1] },
  { name: "1", from: 1, rgba: [0.99, 0.8, 0.55, 1] },
  { name: "2", from: 2, rgba: [0.99, 0.6, 0.35, 1] },
  { name: "3–4", from: 3, rgba: [0.93, 0.38, 0.2, 1] },
  { name: "5–9", from: 5, rgba: [0.78, 0.15, 0.12, 1] },
  { name: "10+", from: 10, rgba: [0.5, 0.0, 0.05, 1] },
];

/** For each map point, the bucket code (1..) of its sample's count, 0 if the sample was not
 * evaluated. `countIds` ascending, as the server sends them; `sampleIds` ascending too. */
export function countCodes(sampleIds: Int32Array, countIds: Int32Array, counts: ArrayLike<number>): Uint8Array {
  const codes = new Uint8Array(sampleIds.length);
  let j = 0;
  for (let i = 0; i < sampleIds.length; i++) {
    while (j < countIds.length && countIds[j] < sampleIds[i]) j++;
    if (j < countIds.length && countIds[j] === sampleIds[i]) {
      const n = counts[j];
      let bucket = 0;
      while (bucket + 1 < COUNT_BUCKETS.length && n >= COUNT_BUCKETS[bucket + 1].from) bucket++;
      codes[i] = bucket + 1;
    }
  }
  return codes;
}
