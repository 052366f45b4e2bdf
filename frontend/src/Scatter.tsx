// The map's WebGL scatter plot (regl-scatterplot): drawing, colouring, lasso, hover and
// clusters over it.
import { useEffect, useMemo, useRef, useState } from "react";
import createScatterplot from "regl-scatterplot";
import { tableFromIPC } from "apache-arrow";
import { cropUrl, datasetPath, thumbnailUrl, type Schemas } from "./api";
import { classColorRgba } from "./colors";
import { selectInside, type Lasso, type LassoBoxes, type Point } from "./lasso";
import { fitArea, frameOf, toUnit, type Frame } from "./mapView";
import {
  boxMask, codesFor, COUNT_BUCKETS, countCodes, fetchMatching, fetchPoints, matchMask, samePlace, type MapPoints,
} from "./points";
import { COUNT_COLORS, type ColorBy } from "./url";

type Cluster = Schemas["Cluster"];
type Plot = ReturnType<typeof createScatterplot>;
const NONE: [number, number, number, number] = [0.6, 0.6, 0.6, 1];
const FADED = 0.08; // opacity of the points the sidebar's filters leave out

function buildIndex(xs: Float32Array, ys: Float32Array): Promise<ArrayBuffer | undefined> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL("./indexWorker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event: MessageEvent<ArrayBuffer>) => {
      resolve(event.data);
      worker.terminate();
    };
    worker.onerror = () => {
      resolve(undefined);
      worker.terminate();
    };
    worker.postMessage({ xs, ys });
  });
}

/** Smaller points for larger maps: they would cover each other anyway, and each costs its
 * area in pixels to draw (a 1M-point frame in software WebGL: ~1.2 s at 4 px); a map of a
 * few thousand points gets points large enough to see and hover. */
export function pointSizeFor(count: number): number {
  return count > 500_000 ? 2 : count > 100_000 ? 3 : count > 5_000 ? 4 : 8;
}

function rgba(name: string | null): [number, number, number, number] {
  return name ? classColorRgba(name) : NONE;
}

export const isCount = (color: ColorBy) => (COUNT_COLORS as readonly string[]).includes(color);

interface Colouring {
  codes: Uint8Array | Uint16Array;
  names: (string | null)[]; // by code; null: none
  colors: [number, number, number, number][];
}

/** The points' colours: categorical from their codes (class, split, tag), or an evaluation's
 * per-sample count (false positives, missed boxes, both) in buckets of a sequential ramp. */
function useColouring(
  dataset: string, points: MapPoints | null, color: ColorBy, evaluation: string | null, version: number,
): Colouring | null {
  const [counts, setCounts] = useState<{ key: string; ids: Int32Array; fp: Int32Array; fn: Int32Array } | null>(null);
  const key = `${evaluation}:${version}`;
  useEffect(() => {
    if (!evaluation || !isCount(color)) return;
    let live = true;
    fetch(`${datasetPath(dataset)}/evaluations/${encodeURIComponent(evaluation)}/samples`)
      .then((r) => r.arrayBuffer())
      .then((bytes) => {
        const table = tableFromIPC(new Uint8Array(bytes));
        const column = (name: string) => table.getChild(name)!.toArray() as Int32Array;
        if (live) setCounts({ key, ids: column("sample_id"), fp: column("fp"), fn: column("fn") });
      })
      .catch(() => undefined);
    return () => { live = false; };
  }, [dataset, evaluation, color, key]); // eslint-disable-line react-hooks/exhaustive-deps
  return useMemo(() => {
    if (!points) return null;
    if (!isCount(color)) {
      const names = points.legend[color as "class" | "split" | "tag"];
      return { codes: codesFor(points, color), names, colors: names.map(rgba) };
    }
    if (!counts || counts.key !== key) return null;
    const values = color === "fp" ? counts.fp : color === "fn" ? counts.fn : counts.fp.map((v, i) => v + counts.fn[i]);
    return {
      codes: countCodes(points.sampleIds, counts.ids, values),
      names: [null, ...COUNT_BUCKETS.map((b) => b.name)],
      colors: [NONE, ...COUNT_BUCKETS.map((b) => b.rgba)],
    };
  }, [points, color, counts, key]);
}

/** For each point with the smallest and largest x and y, where it is on screen: the plot's
 * data -> screen mapping is a scale and shift per axis (rotation is off), so two points per
 * axis give it exactly, and its inverse takes a lasso drawn on screen into data space. */
function screenAxes(plot: Plot, xs: Float32Array, ys: Float32Array) {
  // Screen positions exist once the points are drawn: before, the plot throws (a resize or a
  // "view" event can come first).
  if (!plot.get("isPointsDrawn")) return null;
  const extremes = (values: Float32Array) => {
    let lo = 0, hi = 0;
    for (let i = 1; i < values.length; i++) {
      if (values[i] < values[lo]) lo = i;
      if (values[i] > values[hi]) hi = i;
    }
    return [lo, hi];
  };
  const axis = (values: Float32Array, component: 0 | 1) => {
    const [lo, hi] = extremes(values);
    const a = plot.getScreenPosition(lo), b = plot.getScreenPosition(hi);
    if (!a || !b || values[hi] === values[lo]) return null;
    const scale = (b[component] - a[component]) / (values[hi] - values[lo]);
    return { scale, shift: a[component] - scale * values[lo] };
  };
  const x = axis(xs, 0), y = axis(ys, 1);
  return x && y ? { x, y } : null;
}

type Axes = NonNullable<ReturnType<typeof screenAxes>>;

/** Screen -> the plot's [-1, 1] space (for a lasso drawn on screen). */
function screenMapping(plot: Plot, xs: Float32Array, ys: Float32Array) {
  const axes = screenAxes(plot, xs, ys);
  if (!axes) return null;
  const { x, y } = axes;
  return (sx: number, sy: number): Point => [(sx - x.shift) / x.scale, (sy - y.shift) / y.scale];
}

/** Map coordinates -> where they are on screen. */
function toScreen(axes: Axes, frame: Frame, mx: number, my: number): Point {
  const ux = (mx - frame.midX) / frame.scale, uy = (my - frame.midY) / frame.scale;
  return [ux * axes.x.scale + axes.x.shift, uy * axes.y.scale + axes.y.shift];
}

/** The points of one map, drawn; see `MapView`. */
export function Scatter(
  {
    dataset, mapId, color, evaluation, filters, lassoed, version, prefetched, onSelect, onOpen,
    clusters, activeCluster, onCluster,
  }:
  {
    clusters: Cluster[] | null; activeCluster: number | null; onCluster: (id: number | null) => void;
    dataset: string; mapId: number; color: ColorBy; evaluation: string | null; filters: string;
    lassoed: Int32Array | null; // sample ids, or on a map of objects label ids (ascending)
    version: number; prefetched: Promise<MapPoints> | null; onSelect: (s: Lasso | null) => void;
    onOpen: (id: number, labelId?: number) => void;
  },
) {
  const host = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const trail = useRef<SVGPolylineElement>(null);
  const plot = useRef<
    { plot: Plot; xs: Float32Array; ys: Float32Array; index: Promise<ArrayBuffer | undefined> } | null
  >(null);
  const drawing = useRef<Promise<void>>(Promise.resolve()); // the draw in flight
  const [points, setPoints] = useState<MapPoints | null>(null);
  // The points as placed on the plot: replaced (and the plot made anew) only when a fetch
  // moves them; a change of codes (a tag, an edit) is drawn again on the same plot.
  const [placed, setPlaced] = useState<MapPoints | null>(null);
  const latest = useRef(points);
  latest.current = points;
  const fetches = useRef({ asked: 0, shown: 0, floor: 0, key: "" });
  const colouring = useColouring(dataset, points, color, evaluation, version);
  const [matched, setMatched] = useState<Uint8Array | null>(null);
  const [drawn, setDrawn] = useState(0);
  const [hover, setHover] = useState<{ id: number; box: number | null; x: number; y: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const fit = useRef<(() => void) | null>(null);
  const viewShown = useRef<(() => void) | null>(null); // data-view and the cluster labels, again
  const placing = useRef<{ axes: Axes; frame: Frame } | null>(null); // map -> screen, as viewed
  const [, setViewed] = useState(0);
  const fitted = useRef(false);
  const select = useRef(onSelect);
  select.current = onSelect;
  const openSample = useRef(onOpen);
  openSample.current = onOpen;

  useEffect(() => {
    const fresh = version > 0 || prefetched === null;
    // Each answer is drawn as it comes (changes in quick succession raise a fetch each),
    // unless a later fetch's answer came first, or it is another map's.
    const order = fetches.current;
    const seq = ++order.asked;
    const key = `${dataset}/${mapId}`;
    if (key !== order.key) [order.key, order.floor] = [key, seq];
    const current = () => seq >= order.floor && seq > order.shown;
    (fresh ? fetchPoints(dataset, mapId) : prefetched).then(
      (next) => {
        if (!current()) return;
        order.shown = seq;
        setPoints(next);
        setPlaced((old) => (old && samePlace(old, next) ? old : next));
      },
      (e) => { if (current()) setError(e.message); },
    );
  }, [dataset, mapId, version]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {  // the filters' matches, to fade the rest
    if (!points || !filters) return setMatched(null);
    let live = true;
    fetchMatching(dataset, filters).then(
      (ids) => { if (live) setMatched(matchMask(points.sampleIds, ids)); },
      (e) => setError(e.message),
    );
    return () => { live = false; };
  }, [dataset, filters, points]);

  const inLasso = useMemo(() => {
    if (!points || !lassoed) return null;
    return points.labelIds ? boxMask(points.labelIds, lassoed) : matchMask(points.sampleIds, lassoed);
  }, [points, lassoed]);

  useEffect(() => {
    if (!placed || !canvas.current || !host.current) return;
    const frame = frameOf(placed.x, placed.y);
    const xs = toUnit(placed.x, frame.midX, frame.scale);
    const ys = toUnit(placed.y, frame.midY, frame.scale);
    const index = buildIndex(xs, ys);
    // The plot's own lasso is off (it highlights a selection point by point: seconds at 1M);
    // Shift + drag draws ours, and the selection is shown by fading the rest.
    const created = createScatterplot({
      canvas: canvas.current,
      width: "auto",
      height: "auto",
      pointSize: pointSizeFor(placed.count),
      // No key starts its lasso or rotation. Its typings name only `keyMap`, which it reads as
      // a deprecated name and warns about in the console on every load.
      ...({ actionKeyMap: {} } as object),
    });
    plot.current = { plot: created, xs, ys, index };
    // The view fits every point with a margin, whatever the panel's shape, and again whenever
    // the panel changes size (the plot's own default shows [-1, 1] in the shorter direction).
    const area = fitArea(xs, ys);
    fitted.current = false;
    const showView = () => {  // the map-space rectangle in view, for tests and tools
      const axes = screenAxes(created, xs, ys);
      placing.current = axes ? { axes, frame } : null;
      setViewed((n) => n + 1); // the cluster labels follow the view
      const toData = screenMapping(created, xs, ys);
      const box = canvas.current?.getBoundingClientRect();
      if (!toData || !box || !host.current) return;
      const [ax, ay] = toData(0, 0), [bx, by] = toData(box.width, box.height);
      const toMap = (v: number, mid: number) => v * frame.scale + mid;
      host.current.dataset.view = JSON.stringify([
        toMap(Math.min(ax, bx), frame.midX), toMap(Math.min(ay, by), frame.midY),
        toMap(Math.max(ax, bx), frame.midX), toMap(Math.max(ay, by), frame.midY),
      ]);
    };
    fit.current = () => {
      created.zoomToArea(area);
      requestAnimationFrame(showView);
    };
    viewShown.current = () => requestAnimationFrame(showView);
    created.subscribe("view", () => requestAnimationFrame(showView));
    let frameRequest = 0;
    const resized = new ResizeObserver(() => {
      cancelAnimationFrame(frameRequest);
      frameRequest = requestAnimationFrame(() => fit.current?.());
    });
    resized.observe(canvas.current);
    // The handlers read the latest fetch: its codes may be newer than the placed points'.
    const now = () => latest.current ?? placed;
    created.subscribe("select", ({ points: picked }) => {  // a click on one point opens it
      if (picked.length !== 1) return;
      const points = now();
      const at = picked[0];
      openSample.current(points.sampleIds[at], points.labelIds ? points.labelIds[at] : undefined);
    });
    created.subscribe("pointOver", (index) => {
      const [px, py] = created.getScreenPosition(index) ?? [0, 0];
      const points = now();
      const box = points.labelIds ? points.labelIds[index] : null;
      setHover({ id: points.sampleIds[index], box, x: px, y: py });
    });
    created.subscribe("pointOut", () => setHover(null));

    const element = host.current;
    const line = trail.current!;
    let drawing: [number, number][] | null = null;
    const local = (event: MouseEvent): [number, number] => {
      const box = canvas.current!.getBoundingClientRect();
      return [event.clientX - box.left, event.clientY - box.top];
    };
    const show = () => line.setAttribute("points", (drawing ?? []).map((p) => p.join(",")).join(" "));
    const move = (event: MouseEvent) => {
      event.stopPropagation();
      drawing?.push(local(event));
      show();
    };
    const up = (event: MouseEvent) => {
      event.stopPropagation();
      window.removeEventListener("mousemove", move, true);
      window.removeEventListener("mouseup", up, true);
      const screen = drawing ?? [];
      drawing = null;
      show();
      const toData = screenMapping(created, xs, ys);
      if (screen.length < 3 || !toData) return;
      performance.mark("visor:lasso-end");
      const polygon = screen.map(([sx, sy]) => toData(sx, sy));
      const inside = selectInside(xs, ys, polygon);
      const points = now();
      let ids = new Int32Array(inside.length);
      for (let i = 0; i < inside.length; i++) ids[i] = points.sampleIds[inside[i]];
      let boxes: LassoBoxes | undefined;
      if (points.labelIds) {  // boxes: the samples holding them, once each
        const labelIds = new Int32Array(inside.length);
        for (let i = 0; i < inside.length; i++) labelIds[i] = points.labelIds[inside[i]];
        const classNames = points.legend.class;
        boxes = { labelIds, sampleIds: ids, classes: Array.from(inside, (k) => classNames[points.classCode[k]] ?? null) };
        ids = Int32Array.from(new Set(ids));
      }
      performance.mark("visor:lasso-ids");
      select.current({
        ids,
        polygon: polygon.map(([x, y]) => [x * frame.scale + frame.midX, y * frame.scale + frame.midY]),
        boxes,
      });
    };
    const down = (event: MouseEvent) => {
      if (!event.shiftKey || event.button !== 0) return;
      event.stopPropagation(); // the plot would pan
      event.preventDefault();
      drawing = [local(event)];
      window.addEventListener("mousemove", move, true);
      window.addEventListener("mouseup", up, true);
    };
    element.addEventListener("mousedown", down, true);
    return () => {
      element.removeEventListener("mousedown", down, true);
      window.removeEventListener("mousemove", move, true);
      window.removeEventListener("mouseup", up, true);
      resized.disconnect();
      cancelAnimationFrame(frameRequest);
      fit.current = null;
      viewShown.current = null;
      plot.current = null;
      created.destroy();
    };
  }, [placed]);

  useEffect(() => {  // colours, fading and the lasso's highlight: drawn again on the same plot
    const current = plot.current;
    if (!points || !current || !colouring) return;
    let opacity: Uint8Array;
    if (matched && inLasso) opacity = matched.map((v, i) => v & inLasso[i]);
    else opacity = matched ?? inLasso ?? new Uint8Array(points.count).fill(1);
    current.plot.set({
      colorBy: "valueA",
      pointColor: colouring.colors,
      opacityBy: "valueB",
      opacity: [FADED, 1],
    });
    // One draw at a time: the plot refuses a draw while the last one runs (and throws where
    // nothing waits for it), and one after it is destroyed.
    const previous = drawing.current;
    const done = Promise.all([current.index, previous])
      .then(([spatialIndex]) => {
        if (plot.current !== current || current.plot.get("isDestroyed")) return false;
        return current.plot.draw(
          { x: current.xs, y: current.ys, valueA: colouring.codes, valueB: opacity },
          {
            preventFilterReset: true,
            zDataType: "categorical",
            wDataType: "categorical",
            // Positions don't change between draws, so neither does the index (read-only).
            spatialIndex,
          },
        ).then(() => true);
      });
    drawing.current = done.then(() => undefined, () => undefined);
    done
      .then((drew) => {
        if (!drew) return;
        if (!fitted.current) {
          fitted.current = true;
          fit.current?.();
        } else {
          viewShown.current?.(); // a zoom made while it drew found no points to place
        }
        setDrawn((n) => {
          // the first frame with the points; then each frame a change drew again
          performance.mark(n === 0 ? "visor:map-drawn" : "visor:map-redrawn");
          return n + 1;
        });
      }, (e: Error) => setError(e.message));
  }, [points, colouring, matched, inLasso]); // eslint-disable-line react-hooks/exhaustive-deps

  const present = useMemo(() => {  // the legend's entries: a pass over every point
    const seen = new Uint8Array(1 << 16); // codes are uint8 or uint16 (a Set: 4x the time)
    const codes = colouring ? colouring.codes : new Uint8Array(0);
    for (let i = 0; i < codes.length; i++) seen[codes[i]] = 1;
    const found: number[] = [];
    seen.forEach((v, code) => { if (v) found.push(code); });
    return found;
  }, [colouring]);
  const kept = useMemo(() => (matched ? matched.reduce((sum, v) => sum + v, 0) : null), [matched]);
  return (
    <div
      ref={host}
      className="map"
      data-testid="map"
      data-points={points?.count ?? 0}
      data-objects={points?.labelIds ? "1" : "0"}
      data-drawn={drawn}
      data-matched={kept ?? ""}
    >
      {error && <p className="error">{error}</p>}
      <canvas ref={canvas} />
      <svg className="lasso-trail"><polyline ref={trail} /></svg>
      {clusters && placing.current && drawn > 0 && (
        <ClusterLayer clusters={clusters} place={placing.current} active={activeCluster} onCluster={onCluster} />
      )}
      {hover && (
        <img
          className="hover"
          data-testid="hover"
          data-id={hover.id}
          style={{ left: hover.x + 12, top: hover.y + 12 }}
          src={hover.box !== null ? cropUrl(dataset, hover.box) : thumbnailUrl(dataset, hover.id)}
          alt={hover.box !== null ? `box ${hover.box}` : `sample ${hover.id}`}
        />
      )}
      {points && colouring && (
        <ul className="legend" data-testid="legend" data-color={color}>
          {isCount(color) && <li className="legend-title">{color === "errors" ? "FP + FN" : color === "fp" ? "false positives" : "missed boxes"} per image</li>}
          {present.map((code) => {
            const name = colouring.names[code];
            const [r, g, b] = colouring.colors[code] ?? NONE;
            return (
              <li key={code}>
                <span style={{ background: `rgb(${r * 255}, ${g * 255}, ${b * 255})` }} />
                {name ?? (isCount(color) ? "not evaluated" : "(none)")}
              </li>
            );
          })}
          {kept !== null && <li className="kept">{kept.toLocaleString()} match the filters</li>}
        </ul>
      )}
    </div>
  );
}

/** The map's density clusters: each one's outline, and its label at its centroid; a click
 * on a label filters the samples to that cluster (again: shows every sample). */
function ClusterLayer(
  { clusters, place, active, onCluster }:
  {
    clusters: Cluster[]; place: { axes: Axes; frame: Frame }; active: number | null;
    onCluster: (id: number | null) => void;
  },
) {
  const at = (x: number, y: number) => toScreen(place.axes, place.frame, x, y);
  return (
    <div className="clusters" data-testid="clusters" data-count={clusters.length}>
      <svg className="cluster-outlines">
        {clusters.map((c) => (
          <polygon
            key={c.cluster}
            className={c.cluster === active ? "active" : c.mixed ? "mixed" : undefined}
            points={c.outline.map(([x, y]) => at(x, y).join(",")).join(" ")}
          />
        ))}
      </svg>
      {clusters.map((c) => {
        const [left, top] = at(c.centroid[0], c.centroid[1]);
        return (
          <button
            key={c.cluster}
            className={c.cluster === active ? "cluster-label active" : "cluster-label"}
            data-testid="cluster-label"
            data-cluster={c.cluster}
            data-size={c.size}
            title={`${c.size.toLocaleString()} points${c.mixed ? " · mixes classes" : ""}`}
            style={{ left, top }}
            onClick={() => onCluster(c.cluster === active ? null : c.cluster)}
          >
            {c.label}
          </button>
        );
      })}
    </div>
  );
}
