import { useEffect, useRef, useState } from "react";
import createScatterplot from "regl-scatterplot";
import { api, datasetPath, runJob, thumbnailUrl, type Job } from "./api";
import { classColorRgba } from "./colors";
import { JobBar } from "./JobBar";
import { selectInside, type Point } from "./lasso";
import { frameOf, toUnit } from "./mapView";
import { codesFor, fetchMatching, fetchPoints, matchMask, type MapPoints } from "./points";
import type { ColorBy, ViewState } from "./url";

interface MapRow {
  id: number;
  method: string;
  model: string;
  is_default: boolean;
  num_points: number;
}

export interface Lasso {
  ids: Int32Array; // ascending
  polygon: Point[]; // in map coordinates
}

type Plot = ReturnType<typeof createScatterplot>;
const NONE: [number, number, number, number] = [0.6, 0.6, 0.6, 1];
const FADED = 0.08; // opacity of the points the sidebar's filters leave out

/** The dataset's maps (the default one, or the one in the URL), drawn with WebGL: zoom and
 * pan with the mouse, lasso with Shift + drag, colour by class, split or tag; the points the
 * sidebar's filters leave out fade. Without a map, a button embeds the images and makes one. */
export function MapView(
  { dataset, mapId, color, filters, version, onView, onSelect, onOpen }:
  {
    dataset: string; mapId: number | null; color: ColorBy; filters: string; version: number;
    onView: (patch: Partial<ViewState>) => void; onSelect: (s: Lasso | null) => void;
    onOpen: (id: number) => void;
  },
) {
  const [maps, setMaps] = useState<MapRow[] | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = () => api<MapRow[]>(`${datasetPath(dataset)}/maps`).then(setMaps, (e) => setError(e.message));
  useEffect(() => { reload(); }, [dataset]); // eslint-disable-line react-hooks/exhaustive-deps

  const run = async (path: string) => {
    const ended = await runJob(`${datasetPath(dataset)}${path}`, {}, setJob);
    if (ended.state !== "done") throw new Error(ended.error ?? ended.state);
  };

  const compute = async () => {
    setError(null);
    try {
      await run("/embeddings/generate");
      await run("/maps");
      await reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  if (maps === null) return <div className="map">Loading map…</div>;
  if (!maps.length) {
    return (
      <div className="map empty">
        <p>No map yet.</p>
        <button onClick={compute} disabled={job !== null && job.state === "running"}>Embed and map</button>
        {job && <JobBar job={job} />}
        {error && <p className="error">{error}</p>}
      </div>
    );
  }
  const current = maps.find((m) => m.id === mapId) ?? maps.find((m) => m.is_default) ?? maps[0];
  return (
    <div className="map-stack">
      <div className="map-tools">
        {maps.length > 1 && (
          <label>Map{" "}
            <select
              aria-label="map"
              value={current.id}
              onChange={(e) => { onSelect(null); onView({ map: Number(e.target.value) }); }}
            >
              {maps.map((m) => (
                <option key={m.id} value={m.id}>
                  #{m.id} {m.method} · {m.model}{m.is_default ? " (default)" : ""}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>Colour by{" "}
          <select aria-label="colour by" value={color} onChange={(e) => onView({ color: e.target.value as ColorBy })}>
            <option value="class">class</option>
            <option value="split">split</option>
            <option value="tag">tag</option>
          </select>
        </label>
      </div>
      {job && <JobBar job={job} />}
      <Scatter
        key={current.id}
        dataset={dataset}
        mapId={current.id}
        color={color}
        filters={filters}
        version={version}
        onSelect={onSelect}
        onOpen={onOpen}
      />
    </div>
  );
}

function rgba(name: string | null): [number, number, number, number] {
  return name ? classColorRgba(name) : NONE;
}

function Scatter(
  { dataset, mapId, color, filters, version, onSelect, onOpen }:
  {
    dataset: string; mapId: number; color: ColorBy; filters: string; version: number;
    onSelect: (s: Lasso | null) => void; onOpen: (id: number) => void;
  },
) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const plot = useRef<{ plot: Plot; xs: Float32Array; ys: Float32Array } | null>(null);
  const [points, setPoints] = useState<MapPoints | null>(null);
  const [matched, setMatched] = useState<Uint8Array | null>(null);
  const [drawn, setDrawn] = useState(0);
  const [hover, setHover] = useState<{ id: number; x: number; y: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const select = useRef(onSelect);
  select.current = onSelect;
  const openSample = useRef(onOpen);
  openSample.current = onOpen;

  useEffect(() => {
    fetchPoints(dataset, mapId).then(setPoints, (e) => setError(e.message));
  }, [dataset, mapId, version]);

  useEffect(() => {  // the filters' matches, to fade the rest
    if (!points || !filters) return setMatched(null);
    let live = true;
    fetchMatching(dataset, filters).then(
      (ids) => { if (live) setMatched(matchMask(points.sampleIds, ids)); },
      (e) => setError(e.message),
    );
    return () => { live = false; };
  }, [dataset, filters, points]);

  useEffect(() => {
    if (!points || !canvas.current) return;
    const frame = frameOf(points.x, points.y);
    const xs = toUnit(points.x, frame.midX, frame.scale);
    const ys = toUnit(points.y, frame.midY, frame.scale);
    const created = createScatterplot({ canvas: canvas.current, width: "auto", height: "auto", pointSize: 4 });
    plot.current = { plot: created, xs, ys };
    created.subscribe("lassoEnd", ({ coordinates }) => {
      performance.mark("visor:lasso-end");
      // The lasso's vertices in the plot's [-1, 1] space: [x, y] pairs (typed as flat numbers).
      const raw = coordinates as unknown as (number | [number, number])[];
      const polygon: Point[] = [];
      if (Array.isArray(raw[0])) for (const p of raw as [number, number][]) polygon.push(p);
      else for (let i = 0; i + 1 < raw.length; i += 2) polygon.push([raw[i] as number, raw[i + 1] as number]);
      const inside = selectInside(xs, ys, polygon);
      const ids = new Int32Array(inside.length);
      for (let i = 0; i < inside.length; i++) ids[i] = points.sampleIds[inside[i]];
      select.current({
        ids,
        polygon: polygon.map(([x, y]) => [x * frame.scale + frame.midX, y * frame.scale + frame.midY]),
      });
    });
    created.subscribe("deselect", () => select.current(null));
    let lassoing = false;
    created.subscribe("lassoStart", () => { lassoing = true; });
    created.subscribe("select", ({ points: picked }) => {  // a click on one point opens it
      if (!lassoing && picked.length === 1) openSample.current(points.sampleIds[picked[0]]);
      lassoing = false;
    });
    created.subscribe("pointOver", (index) => {
      const [px, py] = created.getScreenPosition(index) ?? [0, 0];
      setHover({ id: points.sampleIds[index], x: px, y: py });
    });
    created.subscribe("pointOut", () => setHover(null));
    return () => {
      plot.current = null;
      created.destroy();
    };
  }, [points]);

  useEffect(() => {  // colours and fading: drawn again on the same plot
    const current = plot.current;
    if (!points || !current) return;
    const names = points.legend[color];
    const first = drawn === 0;
    current.plot.set({
      colorBy: "valueA",
      pointColor: names.map(rgba),
      opacityBy: "valueB",
      opacity: [FADED, 1],
    });
    current.plot
      .draw(
        {
          x: current.xs,
          y: current.ys,
          valueA: codesFor(points, color),
          valueB: matched ?? new Uint8Array(points.count).fill(1),
        },
        { preventFilterReset: true, zDataType: "categorical", wDataType: "categorical" },
      )
      .then(() => {
        if (first) performance.mark("visor:map-drawn");
        setDrawn((n) => n + 1);
      });
  }, [points, color, matched]); // eslint-disable-line react-hooks/exhaustive-deps

  const codes = points ? codesFor(points, color) : null;
  const present = codes ? [...new Set(codes)].sort((a, b) => a - b) : [];
  const kept = matched ? matched.reduce((sum, v) => sum + v, 0) : null;
  return (
    <div
      className="map"
      data-testid="map"
      data-points={points?.count ?? 0}
      data-drawn={drawn}
      data-matched={kept ?? ""}
    >
      {error && <p className="error">{error}</p>}
      <canvas ref={canvas} />
      {hover && (
        <img
          className="hover"
          data-testid="hover"
          data-id={hover.id}
          style={{ left: hover.x + 12, top: hover.y + 12 }}
          src={thumbnailUrl(dataset, hover.id)}
          alt={`sample ${hover.id}`}
        />
      )}
      {points && (
        <ul className="legend" data-testid="legend">
          {present.map((code) => {
            const name = points.legend[color][code];
            const [r, g, b] = rgba(name);
            return (
              <li key={code}>
                <span style={{ background: `rgb(${r * 255}, ${g * 255}, ${b * 255})` }} />
                {name ?? "(none)"}
              </li>
            );
          })}
          {kept !== null && <li className="kept">{kept.toLocaleString()} match the filters</li>}
        </ul>
      )}
    </div>
  );
}
