import { useEffect, useRef, useState } from "react";
import { api, datasetPath, runJob, type Job, type MapRow, type Schemas } from "./api";
import { JobBar } from "./JobBar";
import type { Lasso } from "./lasso";
import { fetchPoints, type MapPoints } from "./points";
import { isCount, Scatter } from "./Scatter";
import type { ColorBy, ViewState } from "./url";

/** The dataset's maps (the default one, or the one in the URL), drawn with WebGL: zoom and
 * pan with the mouse, lasso with Shift + drag, colour by class, split or tag; the points the
 * sidebar's filters leave out fade. Without a map, a button embeds the images and makes one.
 * Density clusters, once found, are outlined and named; a click on a name filters by it. */
export function MapView(
  {
    dataset, mapId, color, evaluation = null, filters, lassoed, version, onView, onSelect, onOpen,
    cluster = null,
  }:
  {
    cluster?: number | null;
    dataset: string; mapId: number | null; color: ColorBy; evaluation?: string | null; filters: string;
    lassoed: Int32Array | null; version: number; onView: (patch: Partial<ViewState>) => void;
    onSelect: (s: Lasso | null) => void; onOpen: (id: number, labelId?: number) => void;
  },
) {
  const [maps, setMaps] = useState<MapRow[] | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = () => api<MapRow[]>(`${datasetPath(dataset)}/maps`).then(setMaps, (e) => setError(e.message));
  // The points are asked for at once, beside the list of maps, not after it (1M points: ~1 s).
  const early = useRef<{ key: number | "default"; points: Promise<MapPoints> } | null>(null);
  useEffect(() => {
    const key = mapId ?? "default";
    const points = fetchPoints(dataset, key);
    points.catch(() => undefined); // no map yet: the list says so
    early.current = { key, points };
    reload();
  }, [dataset]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {  // a map made elsewhere meanwhile joins the list
    if (version > 0) reload();
  }, [version]); // eslint-disable-line react-hooks/exhaustive-deps

  const run = async (path: string, body: object = {}) => {
    const ended = await runJob(`${datasetPath(dataset)}${path}`, body, setJob);
    if (ended.state !== "done") throw new Error(ended.error ?? ended.state);
    return ended;
  };
  const [clustered, setClustered] = useState<Schemas["ClusterList"] | null>(null);
  const [clusterRun, setClusterRun] = useState(0);
  const shownId = maps?.find((m) => m.id === mapId)?.id ?? maps?.find((m) => m.is_default)?.id ?? null;
  useEffect(() => {
    if (shownId === null) return;
    let live = true;
    api<Schemas["ClusterList"]>(`${datasetPath(dataset)}/maps/${shownId}/clusters`).then(
      (found) => { if (live) setClustered(found); },
      (e) => setError(e.message),
    );
    return () => { live = false; };
  }, [dataset, shownId, version, clusterRun]);
  const findClusters = async (id: number) => {
    setError(null);
    try {
      const ended = await run("/clusters", { map_id: id });
      const said = (ended.result as { message?: string | null } | null)?.message;
      if (said) setError(said);
      setClusterRun((n) => n + 1);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const compute = async () => {
    setError(null);
    try {
      await run("/embed");
      await run("/map");
      early.current = null; // asked before the map existed
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
  const asked = early.current;
  const prefetched =
    asked && (asked.key === current.id || (asked.key === "default" && current.is_default))
      ? asked.points
      : null;
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
                  #{m.id} {m.method} · {m.model}{m.objects ? " · boxes" : ""}{m.is_default ? " (default)" : ""}
                </option>
              ))}
            </select>
          </label>
        )}
        <button
          data-testid="find-clusters"
          onClick={() => findClusters(current.id)}
          disabled={job !== null && job.state === "running"}
          title="HDBSCAN on this map's points; each cluster named by what its members share"
        >
          {clustered?.clusters ? "Find clusters again" : "Find clusters"}
        </button>
        <label>Colour by{" "}
          <select aria-label="colour by" value={color} onChange={(e) => onView({ color: e.target.value as ColorBy })}>
            <option value="class">class</option>
            <option value="split">split</option>
            <option value="tag">tag</option>
            {evaluation && <option value="errors">errors (FP + FN)</option>}
            {evaluation && <option value="fp">false positives</option>}
            {evaluation && <option value="fn">missed boxes</option>}
          </select>
        </label>
      </div>
      {current.warning && <p className="warning" data-testid="weights-warning">{current.warning}</p>}
      {job && <JobBar job={job} />}
      {error && <p className="error">{error}</p>}
      <Scatter
        key={current.id}
        dataset={dataset}
        mapId={current.id}
        color={evaluation || !isCount(color) ? color : "class"}
        evaluation={evaluation}
        filters={filters}
        lassoed={lassoed}
        version={version}
        prefetched={prefetched}
        onSelect={onSelect}
        onOpen={onOpen}
        clusters={clustered?.map_id === current.id ? clustered.clusters ?? null : null}
        activeCluster={cluster}
        onCluster={(id) => onView({ cluster: id, map: id === null ? mapId : current.id })}
      />
    </div>
  );
}

/** The point index of `xs`, `ys`, built in a worker; undefined (the plot builds its own) if
 * the worker fails. */
