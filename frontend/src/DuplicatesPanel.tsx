import { useEffect, useState } from "react";
import { api, datasetPath, runJob, thumbnailUrl, type Job, type Schemas } from "./api";

type Pair = Schemas["DuplicatePair"];
type Run = Schemas["DuplicatesRun"];

const WIDTH = 196;
const HEIGHT = 56;

/** The last duplicates run: its threshold against the histogram of every sample's nearest-
 * neighbour similarity (where the threshold sits tells whether it fits the model), the
 * groups, what could go, and the look-alike clusters beside them. */
export function DuplicatesPanel({ dataset, version }: { dataset: string; version: number }) {
  const [run, setRun] = useState<Run | null | undefined>(undefined);
  const [pairs, setPairs] = useState<Pair[]>([]);
  const [moving, setMoving] = useState<number | null>(null); // the slider, while dragged
  const [job, setJob] = useState<Job | null>(null);
  const [regrouped, setRegrouped] = useState(0);

  useEffect(() => {
    api<Schemas["DuplicatesReport"]>(`${datasetPath(dataset)}/duplicates?limit=1`).then(
      (r) => { setRun(r.run); setPairs(r.closest_pairs ?? []); },
      () => setRun(null),
    );
  }, [dataset, version, regrouped]);

  /** Group again at the slider's threshold (on release: a duplicates job). */
  const regroup = async (threshold: number) => {
    if (!run?.model) return;
    await runJob<"FindDuplicates">(`${datasetPath(dataset)}/duplicates`, { model: run.model, threshold }, setJob);
    setMoving(null);
    setRegrouped((n) => n + 1);
  };

  if (run === undefined) return null;
  if (run === null) {
    return <p className="hint" data-testid="duplicates-panel">No duplicates run yet (visor duplicates {dataset}).</p>;
  }
  const { summary } = run;
  const histogram = summary.nearest_similarity?.histogram;
  const threshold = run.params.threshold;
  return (
    <div className="duplicates-panel" data-testid="duplicates-panel">
      {histogram && threshold != null && (
        <>
          <Histogram edges={histogram.edges} counts={histogram.counts} threshold={moving ?? threshold} />
          <input
            type="range"
            aria-label="duplicates threshold"
            data-testid="threshold-slider"
            min={Math.max(0.5, histogram.edges[0])}
            max={1}
            step={0.0001}
            value={moving ?? threshold}
            disabled={job !== null && (job.state === "queued" || job.state === "running")}
            onChange={(e) => setMoving(Number(e.target.value))}
            onPointerUp={() => moving !== null && regroup(moving)}
            onKeyUp={() => moving !== null && regroup(moving)}
          />
        </>
      )}
      <p>
        {threshold !== null ? `threshold ${threshold}` : "exact copies only"}
        {summary.threshold_rule && <span className="hint"> ({summary.threshold_rule})</span>}
      </p>
      <p>
        {summary.groups} groups, {summary.samples_in_groups} samples
        {summary.removable !== null && `, ${summary.removable} could go`}
        {summary.lookalike_clusters ? `; ${summary.lookalike_clusters} look-alike clusters` : ""}
      </p>
      {summary.threshold_warning && <p className="warning">{summary.threshold_warning}</p>}
      {/* The page's one random-weights banner is the map's: here, a mark and the words on hover. */}
      {run.warning && <p className="hint" title={run.warning}>(random weights: the groups show the pipeline, not real copies)</p>}
      {pairs.length > 0 && (
        <div className="pairs" data-testid="closest-pairs">
          <p className="hint">closest pairs, across splits first:</p>
          {pairs.slice(0, 8).map((pair) => (
            <div key={`${pair.a}-${pair.b}`} className={pair.cross_split ? "pair cross" : "pair"}>
              <img src={thumbnailUrl(dataset, pair.a)} alt={pair.paths[0] ?? `sample ${pair.a}`} title={`${pair.paths[0]} (${pair.splits[0]})`} />
              <img src={thumbnailUrl(dataset, pair.b)} alt={pair.paths[1] ?? `sample ${pair.b}`} title={`${pair.paths[1]} (${pair.splits[1]})`} />
              <span>{pair.similarity.toFixed(4)}{pair.cross_split ? ` · ${pair.splits.join(" / ")}` : ""}</span>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

function Histogram({ edges, counts, threshold }: { edges: number[]; counts: number[]; threshold: number }) {
  const low = edges[0], high = edges[edges.length - 1];
  const x = (value: number) => ((value - low) / (high - low || 1)) * WIDTH;
  const top = Math.max(...counts, 1);
  return (
    <svg
      className="histogram"
      data-testid="nn-histogram"
      width={WIDTH}
      height={HEIGHT + 12}
      aria-label="nearest-neighbour similarity of every sample"
    >
      {counts.map((count, i) => {
        const h = (Math.sqrt(count) / Math.sqrt(top)) * HEIGHT; // square root: a few copies still show
        return (
          <rect key={i} x={x(edges[i])} y={HEIGHT - h} width={Math.max(x(edges[i + 1]) - x(edges[i]) - 1, 1)} height={h}>
            <title>{`${edges[i].toFixed(4)}–${edges[i + 1].toFixed(4)}: ${count}`}</title>
          </rect>
        );
      })}
      {threshold >= low && (
        <line data-testid="threshold" x1={x(threshold)} x2={x(threshold)} y1={0} y2={HEIGHT} />
      )}
      <text x={0} y={HEIGHT + 11}>{low.toFixed(3)}</text>
      <text x={WIDTH} y={HEIGHT + 11} textAnchor="end">1</text>
    </svg>
  );
}
