import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef, useState } from "react";
import { api, datasetPath, thumbnailUrl } from "./api";
import { classColor } from "./colors";
import { PAGE_SIZE, pagesFor } from "./pages";

export interface Sample {
  id: number;
  filename: string;
  classes: string[];
}

const CELL = 176;

/** The request for samples [offset, offset + limit) matching `query` (the samples API's query
 * string), within `selection` when there is one (posted: a lasso can hold many ids). */
export function samplesRequest(
  dataset: string, query: string, selection: number[] | null, offset: number, limit: number,
): [string, RequestInit | undefined] {
  if (selection === null) {
    return [`${datasetPath(dataset)}/samples?${query}&offset=${offset}&limit=${limit}`, undefined];
  }
  const body = { ...Object.fromEntries(new URLSearchParams(query)), ids: selection, offset, limit };
  return [`${datasetPath(dataset)}/samples/query`, { method: "POST", body: JSON.stringify(body) }];
} // px: thumbnail cell width and row height

/** A virtualised thumbnail grid over `total` samples: only the visible rows are in the DOM,
 * and the pages they need (and the next) are fetched as they come near. */
export function Grid(
  { dataset, query, total, selection, onOpen }:
  {
    dataset: string; query: string; total: number; selection: number[] | null;
    onOpen: (index: number, id: number) => void;
  },
) {
  const scroller = useRef<HTMLDivElement>(null);
  const [columns, setColumns] = useState(6);
  const [pages, setPages] = useState<Map<number, Sample[]>>(new Map());
  const requested = useRef<Set<number>>(new Set());

  useEffect(() => {  // a new filter: start over
    setPages(new Map());
    requested.current = new Set();
    scroller.current?.scrollTo({ top: 0 });
  }, [query, selection]);

  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const measure = () => setColumns(Math.max(1, Math.floor(element.clientWidth / CELL)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const rows = Math.ceil(total / columns);
  const virtualizer = useVirtualizer({
    count: rows,
    getScrollElement: () => scroller.current,
    estimateSize: () => CELL,
    overscan: 4,
  });
  const items = virtualizer.getVirtualItems();
  const firstRow = items.length ? items[0].index : 0;
  const lastRow = items.length ? items[items.length - 1].index : 0;

  useEffect(() => {
    for (const page of pagesFor(firstRow * columns, (lastRow + 1) * columns - 1, total)) {
      if (requested.current.has(page)) continue;
      requested.current.add(page);
      api<{ items: Sample[] }>(...samplesRequest(dataset, query, selection, page * PAGE_SIZE, PAGE_SIZE)).then(
        (body) => setPages((old) => new Map(old).set(page, body.items)),
        () => requested.current.delete(page),
      );
    }
  }, [dataset, query, selection, firstRow, lastRow, columns, total]);

  const sampleAt = (index: number): Sample | undefined =>
    pages.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE];

  return (
    <div ref={scroller} className="grid-scroller" data-testid="grid">
      <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
        {items.map((row) => (
          <div
            key={row.key}
            className="grid-row"
            style={{ transform: `translateY(${row.start}px)`, height: CELL }}
          >
            {Array.from({ length: columns }, (_, column) => {
              const index = row.index * columns + column;
              if (index >= total) return null;
              const sample = sampleAt(index);
              return (
                <figure
                  key={column}
                  className="cell"
                  style={{ width: CELL - 8 }}
                  title={sample?.filename}
                  onClick={() => sample && onOpen(index, sample.id)}
                >
                  {sample ? (
                    <>
                      <img
                        loading="lazy"
                        src={thumbnailUrl(dataset, sample.id)}
                        alt={sample.filename}
                      />
                      <figcaption>
                        {sample.classes.slice(0, 3).map((c) => (
                          <span key={c} className="tag" style={{ background: classColor(c) }}>{c}</span>
                        ))}
                      </figcaption>
                    </>
                  ) : (
                    <div className="placeholder" />
                  )}
                </figure>
              );
            })}
          </div>
        ))}
      </div>
    </div>
  );
}
