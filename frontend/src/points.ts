// The map's points as the server sends them: an Arrow IPC stream with sample_id (int32),
// x, y (float32), class (uint16), split (uint8) and tag (uint16) codes, and a JSON legend of
// the codes in the schema metadata (`visor:legend`, code 0 = none).
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
    legend,
  };
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

export async function fetchPoints(dataset: string, mapId: number | "default"): Promise<MapPoints> {
  const url = `/api/datasets/${encodeURIComponent(dataset)}/maps/${mapId}/points`;
  const response = await fetch(url);
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
