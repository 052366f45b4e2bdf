// One colour per class name, the same on every visit: a hash of the name picks the hue.

/** FNV-1a hash of a string, as an unsigned 32-bit integer. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** An `hsl(...)` colour for a class name: hue from the hash, fixed saturation and lightness
 * so every class reads well over thumbnails. */
export function classColor(name: string): string {
  const hash = hashString(name);
  const hue = hash % 360;
  const lightness = 45 + ((hash >>> 9) % 3) * 8; // 45, 53 or 61 %: neighbours in hue differ
  return `hsl(${hue}, 80%, ${lightness}%)`;
}

/** The class colour as RGBA in 0..1, for WebGL. */
export function classColorRgba(name: string): [number, number, number, number] {
  const match = /hsl\((\d+), (\d+)%, (\d+)%\)/.exec(classColor(name))!;
  const [h, s, l] = [Number(match[1]), Number(match[2]) / 100, Number(match[3]) / 100];
  const chroma = (1 - Math.abs(2 * l - 1)) * s;
  const channel = (n: number) => {
    const k = (n + h / 30) % 12;
    return l - (chroma / 2) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
  };
  return [channel(0), channel(8), channel(4), 1];
}
