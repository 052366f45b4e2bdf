import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef } from "react";
import { cropUrl } from "./api";
import { classColor } from "./colors";
import { useColumns } from "./columns";
import type { LassoBoxes } from "./lasso";

const CELL = 136; // px: the least crop cell width (cells widen to fill; rows as tall)

/** The boxes a lasso on a map of objects holds, as crops (virtualised: only the visible rows
 * are in the DOM); a click opens the box's sample with the box highlighted. */
export function ObjectGrid(
  { dataset, boxes, onOpen }:
  { dataset: string; boxes: LassoBoxes; onOpen: (sampleId: number, labelId: number) => void },
) {
  const scroller = useRef<HTMLDivElement>(null);
  const { columns, cell: size } = useColumns(scroller, CELL);
  useEffect(() => { scroller.current?.scrollTo({ top: 0 }); }, [boxes]);
  const total = boxes.labelIds.length;
  const virtualizer = useVirtualizer({
    count: Math.ceil(total / columns),
    getScrollElement: () => scroller.current,
    estimateSize: () => size,
    overscan: 8, // crops are small: more rows ready above and below
  });
  return (
    <div ref={scroller} className="grid-scroller" data-testid="object-grid">
      <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
        {virtualizer.getVirtualItems().map((row) => (
          <div key={row.key} className="grid-row" style={{ transform: `translateY(${row.start}px)`, height: size }}>
            {Array.from({ length: columns }, (_, column) => {
              const index = row.index * columns + column;
              if (index >= total) return null;
              const labelId = boxes.labelIds[index];
              const name = boxes.classes[index];
              return (
                <figure
                  key={column}
                  className="cell crop"
                  style={{ width: size - 8 }}
                  data-box={labelId}
                  data-sample={boxes.sampleIds[index]}
                  title={`box ${labelId}${name ? ` (${name})` : ""}`}
                  onClick={() => onOpen(boxes.sampleIds[index], labelId)}
                >
                  <div className="thumb">
                    <img loading="lazy" src={cropUrl(dataset, labelId)} alt={`box ${labelId}`} />
                  </div>
                  <figcaption>
                    {name && <span className="tag" style={{ background: classColor(name) }}>{name}</span>}
                  </figcaption>
                </figure>
              );
            })}
          </div>
        ))}
      </div>
    </div>
  );
}
