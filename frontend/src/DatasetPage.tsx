import { useEffect, useMemo, useState } from "react";
import { api, datasetPath } from "./api";
import { Grid, samplesRequest } from "./Grid";
import { MapView, type Selection } from "./MapView";
import { SampleView } from "./SampleView";
import type { ViewState } from "./url";

interface Info {
  num_samples: number;
  splits: Record<string, number>;
  classes: { class: string; kind: string; samples: number }[];
  tags: Record<string, number>;
}

const SORTS = ["id", "filename", "size_bytes", "width", "height", "num_labels", "uniqueness"];

/** The query string of the samples API for a view's filters and sort. */
export function samplesQuery(view: ViewState): string {
  const params = new URLSearchParams({ sort: view.sort, order: view.order });
  if (view.split) params.set("split", view.split);
  if (view.cls) params.set("class", view.cls);
  if (view.tag) params.set("tag", view.tag);
  if (view.filename) params.set("filename", view.filename);
  return params.toString();
}

/** One dataset: filters and sort in a sidebar, the matching count, the thumbnail grid. */
export function DatasetPage({ view, navigate }: { view: ViewState; navigate: (v: ViewState) => void }) {
  const name = view.dataset!;
  const [info, setInfo] = useState<Info | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selection, setSelection] = useState<Selection | null>(null);
  const query = useMemo(() => samplesQuery(view), [view]);
  const ids = selection?.ids ?? null;
  const [openIndex, setOpenIndex] = useState<number | null>(null);

  useEffect(() => {
    api<Info>(datasetPath(name)).then(setInfo, (e) => setError(e.message));
  }, [name]);
  useEffect(() => {
    api<{ total: number }>(...samplesRequest(name, query, ids, 0, 1)).then(
      (body) => setTotal(body.total),
      (e) => setError(e.message),
    );
  }, [name, query, ids]);

  if (error) return <main><p className="error">{error}</p></main>;
  const set = (patch: Partial<ViewState>) => navigate({ ...view, ...patch, sample: null });
  const openSample = (id: number, index: number | null = null) => {
    setOpenIndex(index);
    navigate({ ...view, sample: id });
  };
  const step = (delta: number) => {
    if (openIndex === null || total === null) return;
    const next = openIndex + delta;
    if (next < 0 || next >= total) return;
    api<{ items: { id: number }[] }>(...samplesRequest(name, query, ids, next, 1)).then((r) => {
      if (r.items.length) openSample(r.items[0].id, next);
    });
  };
  const classes = info ? [...new Set(info.classes.map((c) => c.class))].sort() : [];
  return (
    <main className="dataset">
      <aside className="sidebar">
        <label>Split
          <select value={view.split ?? ""} onChange={(e) => set({ split: e.target.value || null })}>
            <option value="">all</option>
            {info && Object.keys(info.splits).map((s) => <option key={s}>{s}</option>)}
          </select>
        </label>
        <label>Class
          <select value={view.cls ?? ""} onChange={(e) => set({ cls: e.target.value || null })}>
            <option value="">all</option>
            {classes.map((c) => <option key={c}>{c}</option>)}
          </select>
        </label>
        <label>Tag
          <select value={view.tag ?? ""} onChange={(e) => set({ tag: e.target.value || null })}>
            <option value="">all</option>
            {info && Object.keys(info.tags).map((t) => <option key={t}>{t}</option>)}
          </select>
        </label>
        <label>File name
          <input
            defaultValue={view.filename ?? ""}
            placeholder="contains…"
            onKeyDown={(e) => {
              if (e.key === "Enter") set({ filename: (e.target as HTMLInputElement).value || null });
            }}
          />
        </label>
        <label>Sort
          <select value={view.sort} onChange={(e) => set({ sort: e.target.value })}>
            {SORTS.map((s) => <option key={s}>{s}</option>)}
          </select>
          <select value={view.order} onChange={(e) => set({ order: e.target.value as "asc" | "desc" })}>
            <option value="asc">ascending</option>
            <option value="desc">descending</option>
          </select>
        </label>
      </aside>
      <section className="results">
        <p className="count">
          <span data-testid="count">{total === null ? "…" : `${total.toLocaleString()} samples`}</span>
          {selection && (
            <>
              {" "}in the lasso ({selection.ids.length.toLocaleString()} points){" "}
              <button data-testid="clear-selection" onClick={() => setSelection(null)}>Clear selection</button>
            </>
          )}
        </p>
        {total !== null && (
          <Grid
            dataset={name}
            query={query}
            total={total}
            selection={ids}
            onOpen={(index, id) => openSample(id, index)}
          />
        )}
      </section>
      <section className="map-panel" data-lasso={selection ? JSON.stringify(selection.polygon) : ""}>
        <MapView dataset={name} onSelect={setSelection} onOpen={(id) => openSample(id)} />
      </section>
      {view.sample !== null && (
        <SampleView
          dataset={name}
          id={view.sample}
          open={(id) => openSample(id)}
          step={step}
          close={() => navigate({ ...view, sample: null })}
        />
      )}
    </main>
  );
}
