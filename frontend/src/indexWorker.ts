// Builds the map's point index (KDBush, as regl-scatterplot uses for hovering and clicks) off
// the main thread, while the page sets the plot up; the plot then reads it instead of building
// its own (0.3-0.5 s of main thread at 1M points).
import KDBush from "kdbush";

self.onmessage = (event: MessageEvent<{ xs: Float32Array; ys: Float32Array }>) => {
  const { xs, ys } = event.data;
  const index = new KDBush(xs.length, 16); // regl-scatterplot's node size and coordinate type
  for (let i = 0; i < xs.length; i++) index.add(xs[i], ys[i]);
  index.finish();
  self.postMessage(index.data, { transfer: [index.data] });
};
