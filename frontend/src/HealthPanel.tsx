import { useEffect, useState } from "react";
import { api, datasetPath, runJob, thumbnailUrl, type Job, type Schemas } from "./api";
import type { ViewState } from "./url";

type Row = Schemas["HealthRow"];

/** The view a row's filter asks for (the samples API's names -> the URL's). */
export function viewFor(filter: Record<string, string | number | boolean>): Partial<ViewState> {
  const patch: Partial<ViewState> = {};
  if (filter.has_duplicates) patch.duplicates = true;
  if (typeof filter.tag === "string") patch.tag = filter.tag;
  if (filter.leaked) patch.leaked = true;
  if (filter.label_issue) patch.labelIssue = true;
  if (filter.detection_issue) patch.detectionIssue = true;
  if (typeof filter.uniqueness_min === "number") patch.uniquenessMin = filter.uniqueness_min;
  if (typeof filter.quality === "string") patch.quality = filter.quality;
  if (filter.object_issue === "outlier" || filter.object_issue === "duplicate") patch.objectIssue = filter.object_issue;
  if (typeof filter.cluster === "number") {
    patch.cluster = filter.cluster;
    if (typeof filter.cluster_map === "number") patch.map = filter.cluster_map;
  }
  return patch;
}

const CLEAR: Partial<ViewState> = {
  duplicates: false, leaked: false, labelIssue: false, uniquenessMin: null, quality: null, group: null,
  objectIssue: null, detectionIssue: false, cluster: null, tag: null,
};

/** What is wrong with the dataset: each kind of problem with its count, share and worst
 * examples; a row's button filters the grid to all of them. */
export function HealthPanel(
  { dataset, version, open, navigate }:
  { dataset: string; version: number; open: (id: number) => void; navigate: (patch: Partial<ViewState>) => void },
) {
  const [report, setReport] = useState<{ rows: Row[]; notes: string[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [computed, setComputed] = useState(0); // bumped when a health job ends: reload
  const compute = async () => {
    setError(null);
    const ended = await runJob<"ComputeHealth">(`${datasetPath(dataset)}/health`, {}, setJob);
    if (ended.state !== "done") setError(ended.error ?? `the health job ${ended.state}`);
    setComputed((n) => n + 1);
  };
  // A row that needs a vector per box: the boxes are embedded with the images' model, then
  // the health job computes the row.
  const [model, setModel] = useState<string | null>(null);
  useEffect(() => {
    api<Schemas["VectorStatus"]>(`${datasetPath(dataset)}/embeddings/status`).then(
      (r) => setModel(r.default_model),
      () => setModel(null),
    );
  }, [dataset, version, computed]);
  const checkAgainst = async (source: string) => {
    setError(null);
    const ended = await runJob<"FindLabelErrors">(`${datasetPath(dataset)}/label-errors`, { predictions: source }, setJob);
    if (ended.state !== "done") setError(ended.error ?? `the check ${ended.state}`);
    setComputed((n) => n + 1);
  };
  const embedBoxes = async () => {
    if (!model) return;
    setError(null);
    const ended = await runJob<"Embed">(`${datasetPath(dataset)}/embed`, { model, objects: true }, setJob);
    if (ended.state !== "done") return setError(ended.error ?? `the embed job ${ended.state}`);
    await compute();
  };
  useEffect(() => {
    let live = true;
    api<Schemas["Health"]>(`${datasetPath(dataset)}/health?examples=8`).then(
      (r) => { if (live) setReport(r); },
      (e) => { if (live) setError(e.message); },
    );
    return () => { live = false; };
  }, [dataset, version, computed]);
  if (!report) return error ? <p className="error">{error}</p> : <div className="evaluation">Loading…</div>;
  const running = job !== null && (job.state === "queued" || job.state === "running");
  const missing = report.rows.some((row) => row.count === null);
  return (
    <div className="evaluation health" data-testid="health-panel">
      {error && <p className="error">{error}</p>}
      {(missing || running) && (
        <p className="compute" data-testid="health-compute">
          <button onClick={compute} disabled={running}>Compute all</button>
          {running && <span> {job.message || job.kind} {job.total ? `${job.done}/${job.total}` : ""}</span>}
        </p>
      )}
      {report.notes.map((note, i) => (
        <p key={i} className="warning" data-testid="health-note">[{i + 1}] {note}</p>
      ))}
      <table>
        <tbody>
          {report.rows.map((row) => (
            <tr key={row.kind} data-kind={row.kind}>
              <td>{row.title}</td>
              {row.count === null ? (
                <td colSpan={2} className="hint">
                  not computed: {row.todo}{" "}
                  {row.choices ? (
                    row.choices.map((source) => (
                      <button key={source} onClick={() => checkAgainst(source)} disabled={running}>
                        Check against {source}
                      </button>
                    ))
                  ) : row.todo?.includes("--objects") ? (
                    model && <button onClick={embedBoxes} disabled={running}>Embed boxes</button>
                  ) : (
                    <button onClick={compute} disabled={running}>Compute</button>
                  )}
                </td>
              ) : (
                <>
                  <td className="count">
                    {row.count.toLocaleString()} ({((row.share ?? 0) * 100).toFixed(1)}%)
                    {row.note && <sup className="note-mark" title={row.warning ?? ""}>[{row.note}]</sup>}
                    {row.filter && row.count > 0 && (
                      <button onClick={() => navigate({ ...CLEAR, ...viewFor(row.filter!) })}>show</button>
                    )}
                  </td>
                  <td className="strip">
                    {row.examples?.map((id) => (
                      <img key={id} src={thumbnailUrl(dataset, id)} alt={`sample ${id}`} onClick={() => open(id)} />
                    ))}
                  </td>
                </>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
