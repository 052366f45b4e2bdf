import type { Job } from "./api";

/** A job's progress: a bar when the total is known, its message, and its end state. */
export function JobBar({ job }: { job: Job }) {
  const share = job.total ? Math.min(job.done / job.total, 1) : job.state === "done" ? 1 : 0;
  return (
    <div className={`job job-${job.state}`} role="progressbar" aria-valuenow={Math.round(share * 100)}>
      <div className="bar"><div style={{ width: `${share * 100}%` }} /></div>
      <span>
        {job.kind} {job.state}: {Math.round(share * 100)}% {job.message ?? ""}
        {job.error ? ` — ${job.error}` : ""}
      </span>
    </div>
  );
}
