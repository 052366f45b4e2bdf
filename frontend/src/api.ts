// The HTTP API, as the UI uses it. Errors come back as {"error": {"code", "message"}}.
import type { components } from "./api-schema";

/** The API's models, generated from its OpenAPI document (`npm run api-types`): an operation's
 * body is the Python model that declares it, so a renamed field fails `tsc`, not the browser. */
export type Schemas = components["schemas"];
export type Job = Schemas["Job"];
export type DatasetRow = Schemas["DatasetSummary"];
export type SavedView = Schemas["SavedView"];
export type MapRow = Schemas["MapRow"];

export class ApiError extends Error {}

let written = 0;
/** The workspace's change count after the latest operation this page made (its answer's
 * `X-Visor-Seq`): what a page fetches after that has every change up to it, so their events
 * need no second fetch. */
export const writtenSeq = () => written;

let writing = 0; // this page's operations not answered yet
let waiting: (() => void)[] = [];
/** Runs `then` once this page's operations under way have been answered and their callers
 * have seen the answers (at once if none is): a change event can arrive before the answer to
 * the operation that made it, and then the answer, not the event, is what to fetch on. */
export function afterWrites(then: () => void): void {
  if (!writing) return then();
  waiting.push(then);
}

export async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const writes = (init?.method ?? "GET") !== "GET";
  if (writes) writing += 1;
  try {
    const response = await fetch(path, {
      ...init,
      headers: init?.body ? { "Content-Type": "application/json" } : undefined,
    });
    written = Math.max(written, Number(response.headers.get("X-Visor-Seq") ?? 0) || 0);
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(body?.error?.message ?? `${path}: HTTP ${response.status}`);
    }
    return body as T;
  } finally {
    if (writes && !--writing) {
      // A task later: the caller's continuation (a microtask) takes the answer first.
      setTimeout(() => {
        const now = waiting;
        waiting = [];
        now.forEach((then) => then());
      });
    }
  }
}

export const datasetPath = (name: string) => `/api/datasets/${encodeURIComponent(name)}`;

/** The sidebar's filters (a query string) and a lasso's token as an operation's `filters`: the
 * samples the grid shows. */
export function filterBody(filters: string, selection: string | null): Record<string, string> {
  const chosen: Record<string, string> = Object.fromEntries(new URLSearchParams(filters));
  if (selection) chosen.selection = selection;
  return chosen;
}

/** What the tag and relabel bars act on when no sample is picked: the samples the grid shows
 * (the lasso's, under the sidebar's filters) and how to say it. */
export interface Shown { filters: Record<string, string>; text: string }

/** Starts a job (POST `body` to `url`) and follows its server-sent events: `onUpdate` sees the
 * job as started and at every event; resolves with the job as it ended (done, failed, ...). */
export async function runJob<Op extends keyof Schemas>(
  url: string,
  body: Schemas[Op],
  onUpdate: (job: Job) => void,
): Promise<Job> {
  const started = await api<Job>(url, { method: "POST", body: JSON.stringify(body) });
  onUpdate(started);
  return new Promise((resolve) => {
    const source = new EventSource(`/api/jobs/${started.id}/events`);
    source.addEventListener("progress", (event) => onUpdate(JSON.parse(event.data) as Job));
    source.addEventListener("end", (event) => {
      source.close();
      const ended = JSON.parse(event.data) as Job;
      onUpdate(ended);
      resolve(ended);
    });
  });
}

export const thumbnailUrl = (dataset: string, id: number) =>
  `${datasetPath(dataset)}/samples/${id}/thumbnail`;

/** The ids (int32 bytes) of the samples matching a samples query string. */
export const samplesIdsUrl = (dataset: string, query: string) =>
  `${datasetPath(dataset)}/samples/ids?${query}`;

/** A box's crop (as its object embedding sees it), by label id. */
export const cropUrl = (dataset: string, labelId: number) =>
  `${datasetPath(dataset)}/objects/${labelId}/crop`;

export interface Change {
  seq: number;
  dataset: string | null;
  what: string;
}

/** Calls `onChange` for each change to the workspace the server reports (a job that ended,
 * tags, a deleted dataset), whoever made it: the UI, the CLI or a notebook. Returns the
 * unsubscribe. The browser reconnects a dropped stream by itself, but gives up on an answer
 * other than 200 (a server restarting): then it is opened again after `retryMs`. Changes
 * made while it was away are not replayed: each reconnection reports one `reload`. */
export function watchChanges(onChange: (change: Change) => void, retryMs = 2000): () => void {
  let source: EventSource | null = null;
  let timer = 0;
  let connected = false;
  const open = () => {
    source = new EventSource("/api/events");
    source.addEventListener("hello", (event) => {
      if (connected) {
        written = 0; // a server started again counts its changes from 0
        onChange({ seq: JSON.parse((event as MessageEvent).data).seq, dataset: null, what: "reload" });
      }
      connected = true;
    });
    source.addEventListener("change", (event) => onChange(JSON.parse((event as MessageEvent).data)));
    source.onerror = () => {
      if (source?.readyState !== EventSource.CLOSED) return;
      timer = window.setTimeout(open, retryMs);
    };
  };
  open();
  return () => {
    window.clearTimeout(timer);
    source?.close();
  };
}
