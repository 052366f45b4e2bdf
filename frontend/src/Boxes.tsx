import { classColor } from "./colors";

export interface Box {
  kind: string;
  class: string | null;
  bbox: [number, number, number, number] | null;
  score?: number | null;
}

/** Boxes over an image of `width` x `height` pixels, in the class colour; predictions dashed.
 * `fit` matches the image's CSS object-fit, so the boxes land where the pixels are drawn. */
export function BoxOverlay(
  { width, height, boxes, fit }:
  { width: number; height: number; boxes: Box[]; fit: "cover" | "fill" },
) {
  const stroke = Math.max(width, height) / (fit === "cover" ? 100 : 250);
  return (
    <svg
      className="boxes"
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio={fit === "cover" ? "xMidYMid slice" : "none"}
    >
      {boxes.filter((b) => b.bbox).map((b, i) => (
        <rect
          key={i}
          data-class={b.class ?? ""}
          data-kind={b.kind}
          x={b.bbox![0]} y={b.bbox![1]} width={b.bbox![2]} height={b.bbox![3]}
          fill="none"
          stroke={classColor(b.class ?? "")}
          strokeWidth={stroke}
          strokeDasharray={b.kind === "prediction" ? `${stroke * 3} ${stroke * 2}` : undefined}
        />
      ))}
    </svg>
  );
}
