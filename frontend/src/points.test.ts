import { Float32, Table, makeVector, tableToIPC, vectorFromArray } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { boxMask, codesFor, countCodes, decodePoints, matchMask, samePlace, type MapPoints } from "./points";

describe("map points", () => {
  it("are in the same place when only their codes change", () => {
    const at = (x: number[], ids = [1, 2], labelIds: Int32Array | null = null, tag = [0, 0]): MapPoints => ({
      count: x.length, sampleIds: Int32Array.from(ids), x: Float32Array.from(x), y: Float32Array.from(x),
      classCode: new Uint16Array(x.length), splitCode: new Uint8Array(x.length), tagCode: Uint16Array.from(tag),
      labelIds, legend: { class: [null], split: [null], tag: [null] } as MapPoints["legend"],
    });
    expect(samePlace(at([0, 1]), at([0, 1], [1, 2], null, [1, 1]))).toBe(true); // a tag
    expect(samePlace(at([0, 1]), at([0, 2]))).toBe(false); // a point moved
    expect(samePlace(at([0, 1]), at([0, 1], [1, 3]))).toBe(false); // another sample
    expect(samePlace(at([0, 1]), at([0, 1, 2], [1, 2, 3]))).toBe(false); // one more
    expect(samePlace(at([0, 1]), at([0, 1], [1, 2], Int32Array.from([5, 6])))).toBe(false); // boxes
  });
  it("mark the lassoed boxes of a map of objects", () => {
    // Points by sample then box: label ids are not in order; the lasso's are.
    const labels = Int32Array.from([4, 9, 2, 30, 7]);
    expect(Array.from(boxMask(labels, Int32Array.from([2, 7, 8, 30])))).toEqual([0, 0, 1, 1, 1]);
    expect(Array.from(boxMask(labels, new Int32Array(0)))).toEqual([0, 0, 0, 0, 0]);
  });
  it("decode from an Arrow IPC stream with the legend", () => {
    const table = new Table({
      sample_id: makeVector(Int32Array.from([3, 7, 9])),
      x: makeVector(Float32Array.from([0.5, -1, 2])),
      y: makeVector(Float32Array.from([1, 2, 3])),
      class: makeVector(Uint16Array.from([1, 2, 0])),
      split: makeVector(Uint8Array.from([1, 1, 2])),
      tag: makeVector(Uint16Array.from([0, 1, 0])),
    });
    table.schema.metadata.set(
      "visor:legend",
      JSON.stringify({ class: [null, "circle", "square"], split: [null, "train", "val"], tag: [null, "blurry"] }),
    );
    const points = decodePoints(tableToIPC(table, "stream"));
    expect(points.count).toBe(3);
    expect(Array.from(points.sampleIds)).toEqual([3, 7, 9]);
    expect(points.x).toBeInstanceOf(Float32Array);
    expect(Array.from(points.x)).toEqual([0.5, -1, 2]);
    expect(Array.from(points.classCode)).toEqual([1, 2, 0]);
    expect(points.legend.class[points.classCode[1]]).toBe("square");
    expect(points.legend.split[points.splitCode[2]]).toBe("val");
    expect(codesFor(points, "tag")).toBe(points.tagCode);
    expect(points.legend.tag[codesFor(points, "tag")[1]]).toBe("blurry");
  });
  it("mark the points a filter keeps", () => {
    const ids = Int32Array.from([1, 4, 5, 9, 12]);
    expect(Array.from(matchMask(ids, Int32Array.from([0, 4, 9, 10, 12, 40])))).toEqual([0, 1, 0, 1, 1]);
    expect(Array.from(matchMask(ids, new Int32Array(0)))).toEqual([0, 0, 0, 0, 0]);
  });
  it("refuse a stream without the columns", () => {
    const table = new Table({ other: vectorFromArray([1, 2], new Float32()) });
    expect(() => decodePoints(tableToIPC(table, "stream"))).toThrow(/no column sample_id/);
  });
});

describe("error counts on the map", () => {
  it("buckets each point's count and leaves samples that were not evaluated at 0", () => {
    const points = new Int32Array([1, 2, 3, 5, 8, 9]);
    const ids = new Int32Array([2, 3, 5, 8, 9]);
    expect(Array.from(countCodes(points, ids, [0, 1, 4, 12, 2]))).toEqual([0, 1, 2, 4, 6, 3]);
  });
});
