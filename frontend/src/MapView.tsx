import { useEffect, useRef, useState } from "react";
import createScatterplot from "regl-scatterplot";
import { api, datasetPath, runJob, thumbnailUrl, type Job } from "./api";
import { classColorRgba } from "./colors";
import { JobBar } from "./JobBar";
import { selectInside, type Point } from "./lasso";
import { frameOf, toUnit } from "./mapView";
import { fetchPoints, type MapPoints } from "./points";

interface MapRow {
  id: number;
  method: string;
  model: string;
  is_default: boolean;
}

export interface Selection {
  ids: number[];
  polygon: Point[]; // in map coordinates
}

/** The dataset's default map, drawn with WebGL: zoom and pan with the mouse, lasso with
 * Shift + drag. Without a map, a button embeds the images and makes one, with progress. */
export function MapView(
  { dataset, onSelect, onOpen }:
  { dataset: string; onSelect: (s: Selection | null) => void; onOpen: (id: number) => void },
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
  return (
    <div className="map-stack">
      {job && <JobBar job={job} />}
      <Scatter dataset={dataset} onSelect={onSelect} onOpen={onOpen} />
    </div>
  );
}

function Scatter(
  { dataset, onSelect, onOpen }:
  { dataset: string; onSelect: (s: Selection | null) => void; onOpen: (id: number) => void },
) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [points, setPoints] = useState<MapPoints | null>(null);
  const [hover, setHover] = useState<{ id: number; x: number; y: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const select = useRef(onSelect);
  select.current = onSelect;
  const openSample = useRef(onOpen);
  openSample.current = onOpen;

  useEffect(() => {
    fetchPoints(dataset, "default").then(setPoints, (e) => setError(e.message));
  }, [dataset]);

  useEffect(() => {
    if (!points || !canvas.current) return;
    const frame = frameOf(points.x, points.y);
    const xs = toUnit(points.x, frame.midX, frame.scale);
    const ys = toUnit(points.y, frame.midY, frame.scale);
    const plot = createScatterplot({ canvas: canvas.current, width: "auto", height: "auto", pointSize: 4 });
    plot.set({
      colorBy: "valueA",
      pointColor: points.legend.class.map(
        (c): [number, number, number, number] => (c ? classColorRgba(c) : [0.6, 0.6, 0.6, 1]),
      ),
    });
    plot.draw({ x: xs, y: ys, valueA: points.classCode });
    plot.subscribe("lassoEnd", ({ coordinates }) => {
      // The lasso's vertices in the plot's [-1, 1] space: [x, y] pairs (typed as flat numbers).
      const raw = coordinates as unknown as (number | [number, number])[];
      const polygon: Point[] = [];
      if (Array.isArray(raw[0])) for (const p of raw as [number, number][]) polygon.push(p);
      else for (let i = 0; i + 1 < raw.length; i += 2) polygon.push([raw[i] as number, raw[i + 1] as number]);
      const inside = selectInside(xs, ys, polygon);
      const ids = Array.from(inside, (i) => points.sampleIds[i]).sort((a, b) => a - b);
      select.current({
        ids,
        polygon: polygon.map(([x, y]) => [x * frame.scale + frame.midX, y * frame.scale + frame.midY]),
      });
    });
    plot.subscribe("deselect", () => select.current(null));
    let lassoing = false;
    plot.subscribe("lassoStart", () => { lassoing = true; });
    plot.subscribe("select", ({ points: picked }) => {  // a click on one point opens it
      if (!lassoing && picked.length === 1) openSample.current(points.sampleIds[picked[0]]);
      lassoing = false;
    });
    plot.subscribe("pointOver", (index) => {
      const [px, py] = plot.getScreenPosition(index) ?? [0, 0];
      setHover({ id: points.sampleIds[index], x: px, y: py });
    });
    plot.subscribe("pointOut", () => setHover(null));
    return () => plot.destroy();
  }, [points]);

  const present = points ? [...new Set(points.classCode)].sort((a, b) => a - b) : [];
  return (
    <div className="map" data-testid="map" data-points={points?.count ?? 0}>
      {error && <p className="error">{error}</p>}
      <canvas ref={canvas} />
      {hover && (
        <img
          className="hover"
          data-testid="hover"
          style={{ left: hover.x + 12, top: hover.y + 12 }}
          src={thumbnailUrl(dataset, hover.id)}
          alt={`sample ${hover.id}`}
        />
      )}
      {points && (
        <ul className="legend">
          {present.map((code) => {
            const name = points.legend.class[code];
            const [r, g, b] = name ? classColorRgba(name) : [0.6, 0.6, 0.6];
            return (
              <li key={code}>
                <span style={{ background: `rgb(${r * 255}, ${g * 255}, ${b * 255})` }} />
                {name ?? "(none)"}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
