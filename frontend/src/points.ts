// The map's points as the server sends them: an Arrow IPC stream with sample_id (int32),
// x, y (float32), class (uint16) and split (uint8) codes, and a JSON legend of the codes in
// the schema metadata (`visor:legend`, code 0 = none).
import { tableFromIPC } from "apache-arrow";

export interface MapPoints {
  count: number;
  sampleIds: Int32Array;
  x: Float32Array;
  y: Float32Array;
  classCode: Uint16Array;
  splitCode: Uint8Array;
  legend: { class: (string | null)[]; split: (string | null)[] };
}

export function decodePoints(bytes: Uint8Array): MapPoints {
  const table = tableFromIPC(bytes);
  const column = <T>(name: string): T => {
    const vector = table.getChild(name);
    if (vector === null) throw new Error(`points: no column ${name}`);
    return vector.toArray() as T;
  };
  const legendText = table.schema.metadata.get("visor:legend");
  const legend = legendText ? JSON.parse(legendText) : { class: [null], split: [null] };
  return {
    count: table.numRows,
    sampleIds: column<Int32Array>("sample_id"),
    x: column<Float32Array>("x"),
    y: column<Float32Array>("y"),
    classCode: column<Uint16Array>("class"),
    splitCode: column<Uint8Array>("split"),
    legend,
  };
}

export async function fetchPoints(dataset: string, mapId: number | "default"): Promise<MapPoints> {
  const url = `/api/datasets/${encodeURIComponent(dataset)}/maps/${mapId}/points`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return decodePoints(new Uint8Array(await response.arrayBuffer()));
}
