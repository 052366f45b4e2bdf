import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef } from "react";
import { cropUrl } from "./api";
import { classColor } from "./colors";
import { useColumns } from "./columns";
import type { LassoBoxes } from "./MapView";

const CELL = 136; // px: crop cell width and row height

/** The boxes a lasso on a map of objects holds, as crops (virtualised: only the visible rows
 * are in the DOM); a click opens the box's sample with the box highlighted. */
export function ObjectGrid(
  { dataset, boxes, onOpen }:
  { dataset: string; boxes: LassoBoxes; onOpen: (sampleId: number, labelId: number) => void },
) {
  const scroller = useRef<HTMLDivElement>(null);
  const columns = useColumns(scroller, CELL);
  useEffect(() => { scroller.current?.scrollTo({ top: 0 }); }, [boxes]);
  const total = boxes.labelIds.length;
  const virtualizer = useVirtualizer({
    count: Math.ceil(total / columns),
    getScrollElement: () => scroller.current,
    estimateSize: () => CELL,
    overscan: 4,
  });
  return (
    <div ref={scroller} className="grid-scroller" data-testid="object-grid">
      <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
        {virtualizer.getVirtualItems().map((row) => (
          <div key={row.key} className="grid-row" style={{ transform: `translateY(${row.start}px)`, height: CELL }}>
            {Array.from({ length: columns }, (_, column) => {
              const index = row.index * columns + column;
              if (index >= total) return null;
              const labelId = boxes.labelIds[index];
              const name = boxes.classes[index];
              return (
                <figure
                  key={column}
                  className="cell crop"
                  style={{ width: CELL - 8 }}
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
