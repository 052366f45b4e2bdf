import type { Schemas } from "./api";
import { classColor } from "./colors";

/** A box as the samples API gives it; with an evaluation, its outcome and confusion cell. */
export type Box = Schemas["Box"];

const FP_RED = "#d62728";

/** How a box is drawn: its class colour; with an evaluation, true positives solid, false
 * positives dashed red, missed boxes (false negatives) dotted; without one, predictions
 * dashed. */
export function boxStyle(box: Box, stroke: number): { color: string; dash: string | undefined } {
  if (box.outcome === "fp") return { color: FP_RED, dash: `${stroke * 3} ${stroke * 2}` };
  if (box.outcome === "fn") return { color: classColor(box.class ?? ""), dash: `${stroke} ${stroke * 1.5}` };
  if (box.outcome === "tp" || box.outcome === "ignored") return { color: classColor(box.class ?? ""), dash: undefined };
  return {
    color: classColor(box.class ?? ""),
    dash: box.kind === "prediction" ? `${stroke * 3} ${stroke * 2}` : undefined,
  };
}

/** Whether a box is in a confusion cell (ground truth, prediction; "" the background). */
export function inCell(box: Box, cell: [string, string] | null): boolean {
  if (!cell || !box.cell) return false;
  return (box.cell[0] ?? "") === cell[0] && (box.cell[1] ?? "") === cell[1];
}

/** Boxes over an image of `width` x `height` pixels, styled by `boxStyle`; with a confusion
 * `cell` (or a `highlight`ed box), its boxes stand out and the others fade. `fit` matches the image's CSS object-fit,
 * so the boxes land where the pixels are drawn. */
export function BoxOverlay(
  { width, height, boxes, fit, cell = null, highlight = null }:
  {
    width: number; height: number; boxes: Box[]; fit: "cover" | "fill"; cell?: [string, string] | null;
    highlight?: number | null; // a box's label id: it stands out, the others fade
  },
) {
  const stroke = Math.max(width, height) / (fit === "cover" ? 100 : 250);
  return (
    <svg
      className="boxes"
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio={fit === "cover" ? "xMidYMid slice" : "none"}
    >
      {boxes.filter((b) => b.bbox).map((b, i) => {
        const { color, dash } = boxStyle(b, stroke);
        const chosen = inCell(b, cell) || (highlight !== null && b.id === highlight);
        const fade = (cell !== null || highlight !== null) && !chosen;
        return (
          <rect
            key={b.id ?? i}
            data-class={b.class ?? ""}
            data-kind={b.kind}
            data-outcome={b.outcome ?? ""}
            data-cell={chosen ? "1" : undefined}
            data-id={b.id}
            x={b.bbox![0]} y={b.bbox![1]} width={b.bbox![2]} height={b.bbox![3]}
            fill="none"
            stroke={color}
            strokeWidth={chosen ? stroke * 2 : stroke}
            strokeOpacity={fade ? 0.3 : 1}
            strokeDasharray={dash}
          />
        );
      })}
    </svg>
  );
}
