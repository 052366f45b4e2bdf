import { useState } from "react";
import { datasetPath, filterBody, runJob, type Job, type Schemas } from "./api";
import { JobBar } from "./JobBar";

const FORMATS = ["coco", "yolo", "voc", "classification", "parquet"] as const;

/** The zip file of a finished download export, from its job's result. */
function zipOf(job: Job): string | null {
  const out = (job as Job & { result?: { out?: string } }).result?.out;
  return out && out.endsWith(".zip") ? out.split(/[\\/]/).pop() ?? null : null;
}

/** Export the dataset, or the samples the current filters (and lasso) keep, to a folder on
 * the server's machine, as a job with progress. */
export function ExportPanel(
  { dataset, filters, selection }: { dataset: string; filters: string; selection: string | null },
) {
  const [open, setOpen] = useState(false);
  const [format, setFormat] = useState<(typeof FORMATS)[number]>("coco");
  const [out, setOut] = useState("");
  const [filtered, setFiltered] = useState(true);
  const [images, setImages] = useState<Schemas["Export"]["images"]>("copy");
  const [dedupe, setDedupe] = useState(false);
  const [overwrite, setOverwrite] = useState(false);
  const [download, setDownload] = useState(false);
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!open) return <button onClick={() => setOpen(true)}>Export…</button>;
  const run = async () => {
    setError(null);
    const chosen = filtered ? filterBody(filters, selection) : {};
    try {
      const where = download ? { download: true } : { out, overwrite };
      await runJob<"Export">(`${datasetPath(dataset)}/export`, { ...where, format, filters: chosen, images: download && images === "link" ? "copy" : images, dedupe }, setJob);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <fieldset className="export" data-testid="export">
      <legend>Export</legend>
      <label>Format
        <select aria-label="export format" value={format} onChange={(e) => setFormat(e.target.value as (typeof FORMATS)[number])}>
          {FORMATS.map((f) => <option key={f}>{f}</option>)}
        </select>
      </label>
      <label className="check">
        <input type="checkbox" aria-label="download as a zip" checked={download} onChange={(e) => setDownload(e.target.checked)} />
        download as a zip
      </label>
      {!download && (
        <label>Folder
          <input aria-label="export folder" placeholder="/path/on/the/server" value={out} onChange={(e) => setOut(e.target.value)} />
        </label>
      )}
      <label>Images
        <select aria-label="export images" value={images} onChange={(e) => setImages(e.target.value as Schemas["Export"]["images"])}>
          <option value="copy">copied</option>
          <option value="link">linked</option>
          <option value="none">left out</option>
        </select>
      </label>
      <label className="check">
        <input type="checkbox" checked={filtered} onChange={(e) => setFiltered(e.target.checked)} />
        only what the filters and lasso keep
      </label>
      <label className="check">
        <input type="checkbox" checked={dedupe} onChange={(e) => setDedupe(e.target.checked)} />
        one sample per duplicate group
      </label>
      <label className="check">
        <input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite(e.target.checked)} />
        replace a non-empty folder
      </label>
      <button onClick={run} disabled={(!download && !out) || job?.state === "running"}>Write</button>
      <button onClick={() => setOpen(false)}>Close</button>
      {job && <JobBar job={job} />}
      {job?.state === "done" && <p className="note" data-testid="export-done">{job.message}</p>}
      {job?.state === "done" && zipOf(job) && (
        <a data-testid="export-download" href={`/api/exports/${encodeURIComponent(zipOf(job)!)}`} download>
          Download {zipOf(job)}
        </a>
      )}
      {error && <p className="error">{error}</p>}
    </fieldset>
  );
}
