import { useEffect, useState } from "react";
import { api, datasetPath } from "./api";
import { classColor } from "./colors";
import type { ViewState } from "./url";

interface Sample {
  id: number;
  filename: string;
  classes: string[];
}

interface Page {
  total: number;
  items: Sample[];
}

/** One dataset: the matching samples' count and their thumbnails. */
export function DatasetPage({ view }: { view: ViewState; navigate: (v: ViewState) => void }) {
  const name = view.dataset!;
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const params = new URLSearchParams({ limit: "200", sort: view.sort, order: view.order });
    if (view.split) params.set("split", view.split);
    if (view.cls) params.set("class", view.cls);
    if (view.tag) params.set("tag", view.tag);
    if (view.filename) params.set("filename", view.filename);
    api<Page>(`${datasetPath(name)}/samples?${params}`).then(setPage, (e) => setError(e.message));
  }, [name, view.sort, view.order, view.split, view.cls, view.tag, view.filename]);

  if (error) return <p className="error">{error}</p>;
  if (!page) return <p>Loading…</p>;
  return (
    <main className="dataset">
      <p className="count">{page.total.toLocaleString()} samples</p>
      <div className="grid">
        {page.items.map((s) => (
          <figure key={s.id} className="cell" title={s.filename}>
            <img loading="lazy" src={`${datasetPath(name)}/samples/${s.id}/thumbnail`} alt={s.filename} />
            <figcaption>
              {s.classes.slice(0, 3).map((c) => (
                <span key={c} className="tag" style={{ background: classColor(c) }}>{c}</span>
              ))}
            </figcaption>
          </figure>
        ))}
      </div>
    </main>
  );
}
