// The HTTP API, as the UI uses it. Errors come back as {"error": {"code", "message"}}.

export interface DatasetRow {
  name: string;
  format: string;
  root: string;
  num_samples: number;
  num_labels: number;
  categories: string[];
}

export interface Job {
  id: string;
  kind: string;
  state: string;
  done: number;
  total: number | null;
  message: string | null;
  error: string | null;
}

export class ApiError extends Error {}

export async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(path, {
    ...init,
    headers: init?.body ? { "Content-Type": "application/json" } : undefined,
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(body?.error?.message ?? `${path}: HTTP ${response.status}`);
  }
  return body as T;
}

export const datasetPath = (name: string) => `/api/datasets/${encodeURIComponent(name)}`;

/** Follows a job's server-sent events until it ends; returns a function that stops. */
export function followJob(id: string, onUpdate: (job: Job) => void): () => void {
  const source = new EventSource(`/api/jobs/${id}/events`);
  const handle = (event: MessageEvent) => onUpdate(JSON.parse(event.data) as Job);
  source.addEventListener("progress", handle);
  source.addEventListener("end", (event) => {
    handle(event as MessageEvent);
    source.close();
  });
  return () => source.close();
}
