import { useState } from "react";
import { datasetPath, runJob, type Job } from "./api";
import { JobBar } from "./JobBar";

const FORMATS = ["coco", "yolo", "voc", "classification", "parquet"] as const;

/** Export the dataset, or the samples the current filters (and lasso) keep, to a folder on
 * the server's machine, as a job with progress. */
export function ExportPanel(
  { dataset, filters, selection }: { dataset: string; filters: string; selection: string | null },
) {
  const [open, setOpen] = useState(false);
  const [format, setFormat] = useState<(typeof FORMATS)[number]>("coco");
  const [out, setOut] = useState("");
  const [filtered, setFiltered] = useState(true);
  const [images, setImages] = useState("copy");
  const [dedupe, setDedupe] = useState(false);
  const [overwrite, setOverwrite] = useState(false);
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!open) return <button onClick={() => setOpen(true)}>Export…</button>;
  const run = async () => {
    setError(null);
    const chosen: Record<string, string> = {};
    if (filtered) {
      new URLSearchParams(filters).forEach((value, key) => { chosen[key] = value; });
      if (selection) chosen.selection = selection;
    }
    try {
      await runJob(`${datasetPath(dataset)}/export`, { out, format, filters: chosen, images, dedupe, overwrite }, setJob);
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
      <label>Folder
        <input aria-label="export folder" placeholder="/path/on/the/server" value={out} onChange={(e) => setOut(e.target.value)} />
      </label>
      <label>Images
        <select aria-label="export images" value={images} onChange={(e) => setImages(e.target.value)}>
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
      <button onClick={run} disabled={!out || job?.state === "running"}>Write</button>
      <button onClick={() => setOpen(false)}>Close</button>
      {job && <JobBar job={job} />}
      {job?.state === "done" && <p className="note" data-testid="export-done">{job.message}</p>}
      {error && <p className="error">{error}</p>}
    </fieldset>
  );
}
