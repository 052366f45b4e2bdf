// One colour per class, the same in the grid, the map, its legend and the sample view: the
// dataset's classes in name order take Tableau 20's colours (ten strong ones, then their light
// twins); any past the twentieth get hues a golden angle apart.

export const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
  "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];

let order = new Map<string, number>();

/** The dataset's class names: the i-th in name order gets colour i. Names not in it (a class
 * only predictions have, say) are numbered after them as they are first met. */
export function setClassOrder(names: string[]): void {
  order = new Map([...new Set(names)].sort().map((name, i) => [name, i]));
}

export function classIndex(name: string): number {
  let index = order.get(name);
  if (index === undefined) {
    index = order.size;
    order.set(name, index);
  }
  return index;
}

/** The i-th colour as `#rrggbb`. */
export function colorAt(index: number): string {
  if (index < PALETTE.length) return PALETTE[index];
  const n = index - PALETTE.length;
  const hue = (n * 137.508 + 20) % 360;
  const lightness = [0.42, 0.62, 0.52][n % 3];
  return hex(hslToRgb(hue, 0.75, lightness));
}

export function classColor(name: string): string {
  return colorAt(classIndex(name));
}

/** The class colour as RGBA in 0..1, for WebGL. */
export function classColorRgba(name: string): [number, number, number, number] {
  const value = parseInt(classColor(name).slice(1), 16);
  return [((value >> 16) & 255) / 255, ((value >> 8) & 255) / 255, (value & 255) / 255, 1];
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const chroma = (1 - Math.abs(2 * l - 1)) * s;
  const channel = (n: number) => {
    const k = (n + h / 30) % 12;
    return l - (chroma / 2) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
  };
  return [channel(0), channel(8), channel(4)];
}

function hex(rgb: [number, number, number]): string {
  return "#" + rgb.map((c) => Math.round(c * 255).toString(16).padStart(2, "0")).join("");
}
