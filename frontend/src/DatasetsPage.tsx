import { useCallback, useEffect, useState } from "react";
import { api, datasetPath, runJob, watchChanges, type DatasetRow, type Job, type Schemas } from "./api";
import { JobBar } from "./JobBar";

/** Every dataset with its counts; a form to ingest a path (and, with none yet, to build the demo);
 * delete with confirmation. */
export function DatasetsPage({ open }: { open: (name: string) => void }) {
  const [rows, setRows] = useState<DatasetRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [offerDemo, setOfferDemo] = useState(false);
  const reload = useCallback(() => {
    api<DatasetRow[]>("/api/datasets").then(
      (found) => {
        setRows(found);
        if (found.length === 0) setOfferDemo(true); // kept while its job runs and after
      },
      (e) => setError(String(e.message)),
    );
  }, []);
  useEffect(reload, [reload]);
  useEffect(() => watchChanges(reload), [reload]); // what the CLI or a notebook did, live

  const remove = async (name: string) => {
    if (!window.confirm(`Delete dataset ${name}? Its image files are not touched.`)) return;
    try {
      await api(`${datasetPath(name)}/delete`, { method: "POST" });
    } catch (e) {
      setError((e as Error).message);
    }
    reload();
  };

  return (
    <main className="datasets">
      <h1>Datasets</h1>
      {error && <p className="error">{error}</p>}
      {rows === null ? (
        <p>Loading…</p>
      ) : rows.length === 0 ? (
        <p>No datasets yet: ingest one below, or build the demo (<code>visor demo</code>).</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>name</th><th>format</th><th>samples</th><th>splits</th><th>labels</th><th>classes</th>
              <th>embeddings</th><th>maps</th><th>root</th><th />
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.name}>
                <td><a href={`?dataset=${encodeURIComponent(row.name)}`} onClick={(e) => { e.preventDefault(); open(row.name); }}>{row.name}</a></td>
                <td>{row.format}</td>
                <td>{row.num_samples.toLocaleString()}</td>
                <td>{Object.entries(row.splits).map(([split, n]) => `${split} ${n.toLocaleString()}`).join(" · ")}</td>
                <td>{row.num_labels.toLocaleString()}</td>
                <td>{row.categories.length}</td>
                <td data-testid="embeddings">
                  {Object.entries(row.vectors).map(([model, n]) => `${model}: ${n.toLocaleString()}`).join(", ") || "none"}
                </td>
                <td data-testid="maps">{row.maps || "none"}</td>
                <td className="root">{row.root}</td>
                <td><button onClick={() => remove(row.name)}>Delete</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {offerDemo && <DemoForm done={reload} />}
      <IngestForm done={reload} />
    </main>
  );
}

function IngestForm({ done }: { done: () => void }) {
  const [path, setPath] = useState("");
  const [name, setName] = useState("");
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [found, setFound] = useState<string | null>(null);

  // Once a path is typed, say what an ingest would find there (format, images) before it runs.
  useEffect(() => {
    setFound(null);
    if (!path.trim()) return;
    const timer = window.setTimeout(() => {
      api<Schemas["Inspection"]>(`/api/inspect?path=${encodeURIComponent(path)}`).then(
        (r) => setFound(`detected: ${r.format}, ${r.images.toLocaleString()} images`),
        (e) => setFound(`cannot ingest: ${(e as Error).message}`),
      );
    }, 400);
    return () => window.clearTimeout(timer);
  }, [path]);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const ended = await runJob<"Ingest">("/api/ingest", { path, name }, setJob);
      if (ended.state === "done") done();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <form className="ingest" onSubmit={submit}>
      <h2>Ingest</h2>
      <input placeholder="path: /data/coco, s3://bucket/prefix" value={path} onChange={(e) => setPath(e.target.value)} required />
      <input placeholder="name" value={name} onChange={(e) => setName(e.target.value)} required />
      <button type="submit">Ingest</button>
      <span className="hint" data-testid="detected">
        {found ?? "format: detected from the folder (COCO, YOLO, VOC, class folders, images)"}
      </span>
      {error && <p className="error">{error}</p>}
      {job && <JobBar job={job} />}
    </form>
  );
}

/** The demo, built by the server as one job: synthetic shapes, ingested, embedded, mapped. */
function DemoForm({ done }: { done: () => void }) {
  const [images, setImages] = useState(2000);
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const ended = await runJob<"Demo">("/api/demo", { images }, setJob);
      if (ended.state === "done") done();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <form className="ingest" onSubmit={submit}>
      <label>
        Images <input type="number" min={10} value={images} onChange={(e) => setImages(Number(e.target.value))} />
      </label>
      <button type="submit">Build the demo</button>
      <span className="hint">synthetic shapes: ingested, embedded, mapped and deduplicated</span>
      {error && <p className="error">{error}</p>}
      {job && <JobBar job={job} />}
    </form>
  );
}
