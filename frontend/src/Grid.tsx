import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef, useState } from "react";
import { api, datasetPath, thumbnailUrl, type Schemas } from "./api";
import { BoxOverlay } from "./Boxes";
import { classColor } from "./colors";
import { useColumns } from "./columns";
import { PAGE_SIZE, pagesFor } from "./pages";
import type { BoxKinds } from "./url";

export type Sample = Schemas["SampleRow"];

const CELL = 176; // px: the least cell width (cells widen to fill the grid)
const CAPTION = 26; // px: a cell's one line of classes under its 4:3 thumbnail
const GAP = 8; // px between cells and rows

/** A row's height: the thumbnail (4:3 across the cell) and its caption, then the gap. */
export function rowHeight(cell: number): number {
  return Math.ceil(((cell - GAP) * 3) / 4) + CAPTION + GAP;
}

/** The samples API URL for samples [offset, offset + limit) matching `query` (its query string:
 * filters, sort, and a `selection` token for a lasso). */
export function samplesUrl(dataset: string, query: string, offset: number, limit: number): string {
  return `${datasetPath(dataset)}/samples?${query}&offset=${offset}&limit=${limit}`;
}

/** A virtualised thumbnail grid over `total` samples: only the visible rows are in the DOM,
 * and the pages they need (and the next) are fetched as they come near. Each cell shows its
 * boxes (`boxes`: which kinds) and a box to pick it for tagging; `version` refetches. */
export function Grid(
  { dataset, query, total, boxes, cell = null, picked, version, onPick, onOpen }:
  {
    dataset: string; query: string; total: number; boxes: BoxKinds; cell?: [string, string] | null;
    picked: Set<number>;
    version: number; onPick: (id: number) => void; onOpen: (index: number, id: number) => void;
  },
) {
  const scroller = useRef<HTMLDivElement>(null);
  const { columns, cell: size } = useColumns(scroller, CELL);
  const height = rowHeight(size);
  const [pages, setPages] = useState<Map<number, Sample[]>>(new Map());
  const requested = useRef<Set<number>>(new Set());
  const pageQuery = boxes === "none" ? query : `${query}&boxes=${boxes}`;

  const generation = useRef(0); // answers to an older query are dropped
  const shownVersion = useRef(version);

  useEffect(() => {  // a new filter: back to the top
    scroller.current?.scrollTo({ top: 0 });
  }, [query]);

  useEffect(() => {  // new samples, or the same drawn anew (other boxes)
    generation.current += 1;
    setPages(new Map());
    requested.current = new Set();
  }, [pageQuery]);
  useEffect(() => {  // changed elsewhere (tags, labels): fetched again, shown until replaced
    if (version === shownVersion.current) return;
    shownVersion.current = version;
    generation.current += 1;
    requested.current = new Set();
    setPages((old) => new Map(old)); // asks for the visible pages again
  }, [version]);

  const rows = Math.ceil(total / columns);
  const virtualizer = useVirtualizer({
    count: rows,
    getScrollElement: () => scroller.current,
    estimateSize: () => height,
    overscan: 4,
  });
  useEffect(() => virtualizer.measure(), [height]); // eslint-disable-line react-hooks/exhaustive-deps
  const items = virtualizer.getVirtualItems();
  const firstRow = items.length ? items[0].index : 0;
  const lastRow = items.length ? items[items.length - 1].index : 0;

  useEffect(() => {
    for (const page of pagesFor(firstRow * columns, (lastRow + 1) * columns - 1, total)) {
      if (requested.current.has(page)) continue;
      requested.current.add(page);
      const asked = generation.current;
      api<{ items: Sample[] }>(samplesUrl(dataset, pageQuery, page * PAGE_SIZE, PAGE_SIZE)).then(
        (body) => {
          if (asked === generation.current) setPages((old) => new Map(old).set(page, body.items));
        },
        () => requested.current.delete(page),
      );
    }
  }, [dataset, pageQuery, firstRow, lastRow, columns, total, pages]);

  const sampleAt = (index: number): Sample | undefined =>
    pages.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE];

  return (
    <div ref={scroller} className="grid-scroller" data-testid="grid">
      <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
        {items.map((row) => (
          <div
            key={row.key}
            className="grid-row"
            style={{ transform: `translateY(${row.start}px)`, height }}
          >
            {Array.from({ length: columns }, (_, column) => {
              const index = row.index * columns + column;
              if (index >= total) return null;
              const sample = sampleAt(index);
              return (
                <figure
                  key={column}
                  className={sample && picked.has(sample.id) ? "cell picked" : "cell"}
                  style={{ width: size - GAP }}
                  title={sample?.filename}
                  data-id={sample?.id}
                  onClick={(event) => {
                    if (!sample) return;
                    if (event.ctrlKey || event.metaKey) onPick(sample.id);
                    else onOpen(index, sample.id);
                  }}
                >
                  {sample ? (
                    <>
                      <div className="thumb">
                        <img loading="lazy" src={thumbnailUrl(dataset, sample.id)} alt={sample.filename} />
                        {sample.boxes && sample.width && sample.height && (
                          <BoxOverlay width={sample.width} height={sample.height} boxes={sample.boxes} fit="cover" cell={cell} />
                        )}
                        <input
                          type="checkbox"
                          className="pick"
                          aria-label={`pick ${sample.filename}`}
                          checked={picked.has(sample.id)}
                          onClick={(event) => event.stopPropagation()}
                          onChange={() => onPick(sample.id)}
                        />
                      </div>
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
