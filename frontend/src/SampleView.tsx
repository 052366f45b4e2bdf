import { useEffect, useLayoutEffect, useState } from "react";
import { api, cropUrl, datasetPath, thumbnailUrl, type Schemas } from "./api";
import { BoxOverlay, type Box } from "./Boxes";

type Label = Schemas["Label"];
type SampleDetail = Schemas["SampleDetail"];

/** What cleanlab's detection check says of a box, in words. */
function detectionWords(signal: string, cls: string | null): string {
  if (signal === "overlooked") return `a ${cls ?? ""} box may be missing here (the model found one)`;
  if (signal === "swap") return `this ${cls ?? ""} box may be of another class`;
  return `this ${cls ?? ""} box may be badly placed`;
}

/** A box's outcome in words: "TP (IoU 0.83)", "FP: a Dead box", "missed (called Tree)". */
function describe(l: Box): string {
  const iou = l.iou != null ? ` (IoU ${l.iou.toFixed(2)})` : "";
  if (l.outcome === "tp") return `TP${iou}`;
  if (l.outcome === "fp") return l.cell?.[0] ? `FP: a ${l.cell[0]} box${iou}` : "FP";
  if (l.outcome === "fn") return l.cell?.[1] ? `missed (called ${l.cell[1]})` : "missed";
  return l.outcome ?? "";
}

type Neighbour = Schemas["Neighbour"];

type NearBox = Schemas["NearBox"];

/** One sample over the page: the image with its boxes, labels, metadata, tags, nearest
 * neighbours and duplicate group. Esc closes; the arrow keys step through the grid. */
export function SampleView(
  { dataset, id, evaluation = null, cell = null, box = null, classes = [], open, openBox, showGroup, step, close }:
  {
    dataset: string; id: number; evaluation?: string | null; cell?: [string, string] | null;
    classes?: string[]; // the dataset's classes, offered when a label's class is changed
    box?: number | null; // a box (label id) shown highlighted, with its most similar boxes
    open: (id: number) => void; openBox: (sampleId: number, labelId: number | null) => void;
    showGroup: (group: number) => void;
    step: (delta: number) => void; close: () => void;
  },
) {
  const [sample, setSample] = useState<SampleDetail | null>(null);
  const [neighbours, setNeighbours] = useState<Neighbour[] | null>(null);
  const [warning, setWarning] = useState<string | null>(null);
  const [group, setGroup] = useState<{ id: number; path: string }[]>([]);
  const [note, setNote] = useState<string | null>(null);
  // Why there are no neighbours (no vectors yet): said where they would be, not as an error.
  const [neighboursNote, setNeighboursNote] = useState<string | null>(null);
  const [outcomes, setOutcomes] = useState<Map<number, Box>>(new Map());
  const [nearBoxes, setNearBoxes] = useState<NearBox[] | null>(null);
  const [boxWarning, setBoxWarning] = useState<string | null>(null); // random box-vector weights
  const [edited, setEdited] = useState(0); // bumped by each edit, undo or redo: reload
  const [editNote, setEditNote] = useState<string | null>(null);
  const base = datasetPath(dataset);
  // Which vectors the dataset has (its images', its boxes'): neighbours are asked for only
  // where there are some (undefined: not known yet).
  const [vectors, setVectors] = useState<{ images: string | null; boxes: string | null }>();
  useEffect(() => {
    let live = true;
    Promise.all([
      api<Schemas["VectorStatus"]>(`${base}/embeddings/status`),
      api<Schemas["ObjectVectorStatus"]>(`${base}/objects`),
    ]).then(
      ([images, boxes]) => { if (live) setVectors({ images: images.default_model, boxes: boxes.default_model }); },
      () => { if (live) setVectors({ images: null, boxes: null }); },
    );
    return () => { live = false; };
  }, [base, edited]);

  /** One batch of edits (or undo/redo), then the sample again. */
  const edit = (path: string, body?: unknown) => {
    setEditNote(null);
    api<Schemas["EditMade"] | Schemas["EditStepped"]>(`${base}${path}`, { method: "POST", body: body ? JSON.stringify(body) : undefined })
      .then((r) => { setEditNote("state" in r ? `edit ${r.batch} ${r.state}` : `edit ${r.batch} saved`); setEdited((n) => n + 1); })
      .catch((e) => setEditNote(e.message));
  };
  const change = (changes: Record<string, unknown>[]) => edit("/edit", { changes });
  // Drawing a new box: its class, and the box being dragged (image pixels: x0, y0, x1, y1).
  const [drawClass, setDrawClass] = useState<string | null>(null);
  const [draft, setDraft] = useState<[number, number, number, number] | null>(null);
  const toImage = (event: React.MouseEvent<HTMLDivElement>): [number, number] => {
    const img = event.currentTarget.querySelector("img")!.getBoundingClientRect();
    const w = sample?.width ?? 1, h = sample?.height ?? 1;
    const x = Math.min(Math.max((event.clientX - img.left) / img.width, 0), 1) * w;
    const y = Math.min(Math.max((event.clientY - img.top) / img.height, 0), 1) * h;
    return [x, y];
  };

  useEffect(() => {  // the highlighted box's nearest boxes (when boxes have vectors)
    setNearBoxes(null);
    setBoxWarning(null);
    if (box === null || vectors === undefined) return;
    if (vectors.boxes === null) return setNearBoxes([]);
    let live = true;
    api<Schemas["NearBoxes"]>(`${base}/objects/${box}/similar?k=12`).then(
      (r) => { if (live) { setNearBoxes(r.neighbours); setBoxWarning(r.warning ?? null); } },
      () => { if (live) setNearBoxes([]); },
    );
    return () => { live = false; };
  }, [base, box, vectors]);

  useEffect(() => {  // with an evaluation: each box's outcome and confusion cell
    setOutcomes(new Map());
    if (!evaluation) return;
    let live = true;
    api<Schemas["SamplePage"]>(`${base}/samples/query`, {
      method: "POST",
      body: JSON.stringify({ ids: [id], evaluation, boxes: "all", limit: 1 }),
    }).then(
      (r) => { if (live) setOutcomes(new Map((r.items[0]?.boxes ?? []).map((b) => [b.id!, b]))); },
      () => undefined,
    );
    return () => { live = false; };
  }, [base, id, evaluation]);

  useEffect(() => {
    setSample(null);
    setNeighbours(null);
    setWarning(null);
    setNote(null);
    setNeighboursNote(null);
    // Answers about a sample the view has already left (arrow keys) are dropped.
    let live = true;
    api<SampleDetail>(`${base}/samples/${id}`).then(
      (found) => { if (live) setSample(found); },
      (e) => { if (live) setNote(e.message); },
    );
    return () => { live = false; };
  }, [base, id, edited]);

  useEffect(() => {  // the nearest samples, where the dataset has vectors
    if (vectors === undefined) return;
    if (vectors.images === null) {
      setNeighbours([]);
      setNeighboursNote(`dataset '${dataset}' has no vectors yet: run embed first (visor embed ${dataset})`);
      return;
    }
    let live = true;
    api<Schemas["Neighbours"]>(`${base}/samples/${id}/similar?k=12`).then(
      (r) => { if (live) { setNeighbours(r.neighbours); setWarning(r.warning ?? null); } },
      (e) => { if (live) { setNeighbours([]); setNeighboursNote(e.message); } },
    );
    return () => { live = false; };
  }, [base, id, edited, vectors, dataset]);

  useEffect(() => {
    setGroup([]);
    if (sample?.duplicate_group == null) return;
    let live = true;
    api<Schemas["SamplePage"]>(`${base}/samples?duplicate_group=${sample.duplicate_group}`)
      .then((r) => { if (live) setGroup(r.items.filter((s) => s.id !== sample.id)); }, () => undefined);
    return () => { live = false; };
  }, [base, sample]);

  // Registered before the browser paints (a layout effect): a key pressed as soon as the
  // next sample shows must reach the handler that knows where it is, not the previous one.
  useLayoutEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if ((event.target as HTMLElement).tagName === "INPUT") return; // typing a class
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
        event.preventDefault();
        edit(event.shiftKey ? "/redo" : "/undo");
        return;
      }
      if (event.key === "Escape") close();
      else if (event.key === "ArrowRight") step(1);
      else if (event.key === "ArrowLeft") step(-1);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [close, step]); // eslint-disable-line react-hooks/exhaustive-deps

  // The labels with their outcomes (only evaluated boxes have one).
  const labels: Label[] = (sample?.labels ?? []).map((l) => ({ ...l, ...(l.id !== undefined ? outcomes.get(l.id) : {}) }));
  return (
    <div className="overlay" onClick={close}>
      <div className="sample" role="dialog" aria-label={`sample ${id}`} onClick={(e) => e.stopPropagation()}>
        <button className="close" onClick={close} aria-label="close">×</button>
        {note && <p className="note">{note}</p>}
        {sample && (
          <>
            <div
              className={drawClass ? "picture drawing" : "picture"}
              data-testid="picture"
              onMouseDown={(e) => {
                if (!drawClass) return;
                e.preventDefault();
                const [x, y] = toImage(e);
                setDraft([x, y, x, y]);
              }}
              onMouseMove={(e) => {
                if (!draft) return;
                const [x, y] = toImage(e);
                setDraft([draft[0], draft[1], x, y]);
              }}
              onMouseUp={() => {
                if (!draft || !drawClass) return;
                const [x0, y0, x1, y1] = draft;
                setDraft(null);
                const box = [Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0)];
                if (box[2] >= 1 && box[3] >= 1) change([{ action: "add", sample_id: id, class: drawClass, box }]);
              }}
            >
              <img src={`${base}/samples/${id}/image`} alt={sample.path} draggable={false} />
              {sample.width && sample.height && (
                <BoxOverlay
                  width={sample.width}
                  height={sample.height}
                  boxes={draft ? [...labels, {
                    id: -1, kind: "gt", class: drawClass, source: "edit", score: null,
                    bbox: [Math.min(draft[0], draft[2]), Math.min(draft[1], draft[3]), Math.abs(draft[2] - draft[0]), Math.abs(draft[3] - draft[1])],
                  }] : labels}
                  fit="fill"
                  cell={cell}
                  highlight={box}
                />
              )}
            </div>
            <div className="details">
              <h2>{sample.path}</h2>
              <p>
                #{sample.id} · {sample.width}×{sample.height} · {sample.split ?? "no split"}
                {sample.uniqueness != null && ` · uniqueness ${sample.uniqueness}`}
              </p>
              {sample.tags.length > 0 && <p>tags: {sample.tags.join(", ")}</p>}
              {labels.filter((l) => l.label_quality && l.label_quality.suggested !== l.class).map((l, i) => (
                <p key={i} className={l.label_quality!.issue ? "warning" : "note"} data-testid="label-quality">
                  Labelled {l.class}; its neighbours say {l.label_quality!.suggested} (
                  {Math.round((l.label_quality!.suggested_probability ?? 0) * 100)}%, label quality{" "}
                  {l.label_quality!.quality.toFixed(2)}){l.label_quality!.issue ? ": likely a label error" : ""}.{" "}
                  <button onClick={() => edit("/accept-suggestions", { label_ids: [l.id] })}>Accept {l.label_quality!.suggested}</button>
                </p>
              ))}
              <p className="edit-bar">
                <button onClick={() => edit("/undo")} title="Ctrl+Z">Undo</button>
                <button onClick={() => edit("/redo")} title="Ctrl+Shift+Z">Redo</button>
                <button onClick={() => change([{ action: sample.flags?.includes("excluded") ? "include" : "exclude", sample_id: id }])}>
                  {sample.flags?.includes("excluded") ? "Take back into exports" : "Exclude from exports"}
                </button>
                <input
                  aria-label="class of a new box"
                  list="visor-classes"
                  placeholder="class of a new box"
                  onKeyDown={(e) => {
                    const value = (e.target as HTMLInputElement).value.trim();
                    if (e.key === "Enter" && value) setDrawClass(value);
                  }}
                />
                <button onClick={() => setDrawClass(drawClass ? null : (document.querySelector<HTMLInputElement>("input[aria-label='class of a new box']")?.value.trim() || null))}>
                  {drawClass ? `Drawing ${drawClass} boxes (stop)` : "Draw a box"}
                </button>
                {editNote && <span className="note" data-testid="edit-note">{editNote}</span>}
              </p>
              <datalist id="visor-classes">{classes.map((c) => <option key={c} value={c} />)}</datalist>
              {sample.detection_check?.issue && (
                <div className="warning" data-testid="detection-check">
                  cleanlab, against the predictions of {sample.detection_check.source}: label quality{" "}
                  {sample.detection_check.quality.toFixed(2)}
                  <ul>
                    {sample.detection_check.boxes.map((b) => (
                      <li key={`${b.label_id}-${b.signal}`} data-box={b.label_id} data-signal={b.signal}>
                        <button className="link" onClick={() => openBox(id, b.label_id)}>
                          {detectionWords(b.signal, b.class)}
                        </button>{" "}(score {b.score.toFixed(2)})
                      </li>
                    ))}
                  </ul>
                </div>
              )}
              <div className="labels-scroll" data-testid="labels">
              <table className="labels">
                <thead>
                  <tr><th>class</th><th>kind</th><th>box</th><th>score</th>{evaluation && <th>outcome</th>}</tr>
                </thead>
                <tbody>
                  {labels.map((l, i) => (
                    <tr
                      key={i}
                      data-outcome={l.outcome ?? ""}
                      className={box !== null && l.id === box ? "highlighted" : undefined}
                      onClick={() => l.bbox && l.id !== undefined && openBox(id, l.id === box ? null : l.id)}
                    >
                      <td>
                        {l.kind === "gt" && l.id !== undefined ? (
                          <input
                            key={`${l.id}-${l.class}`}
                            className="class-input"
                            aria-label={`class of label ${l.id}`}
                            list="visor-classes"
                            defaultValue={l.class ?? ""}
                            onClick={(e) => e.stopPropagation()}
                            onKeyDown={(e) => {
                              const value = (e.target as HTMLInputElement).value.trim();
                              if (e.key === "Enter" && value && value !== l.class) {
                                change([{ action: "set_class", label_id: l.id, class: value }]);
                              }
                            }}
                          />
                        ) : l.class}
                      </td>
                      <td>
                        {l.kind === "gt" ? "ground truth" : `${l.kind} (${l.source})`}
                        {l.kind === "gt" && l.id !== undefined && (
                          <button
                            className="link"
                            aria-label={`delete label ${l.id}`}
                            onClick={(e) => { e.stopPropagation(); change([{ action: "delete", label_id: l.id }]); }}
                          >×</button>
                        )}
                      </td>
                      <td>{l.bbox?.map((v) => Math.round(v)).join(", ")}</td>
                      <td>{l.score?.toFixed(2)}</td>
                      {evaluation && <td>{describe(l)}</td>}
                    </tr>
                  ))}
                </tbody>
              </table>
              </div>
              {Object.keys(sample.metadata).length > 0 && (
                <pre className="metadata">{JSON.stringify(sample.metadata, null, 1)}</pre>
              )}
            </div>
          </>
        )}
        {box !== null && nearBoxes !== null && nearBoxes.length > 0 && (
          <>
            <h3>Boxes most like the highlighted one</h3>
            {boxWarning && <p className="warning" data-testid="box-weights-warning">{boxWarning}</p>}
            <div className="strip" data-testid="similar-boxes">
              {nearBoxes.map((b) => (
                <img
                  key={b.label_id}
                  src={cropUrl(dataset, b.label_id)}
                  alt={`box ${b.label_id}`}
                  title={`${b.class ?? ""} (distance ${b.distance.toFixed(4)})`}
                  data-id={b.label_id}
                  onClick={() => openBox(b.sample_id, b.label_id)}
                />
              ))}
            </div>
          </>
        )}
        <h3>Nearest neighbours</h3>
        {warning && <p className="warning" data-testid="weights-warning">{warning}</p>}
        <div className="strip" data-testid="neighbours">
          {neighbours === null && "…"}
          {neighboursNote && <span className="hint" data-testid="neighbours-note">{neighboursNote}</span>}
          {neighbours?.map((n) => (
            <img
              key={n.sample_id}
              src={thumbnailUrl(dataset, n.sample_id)}
              alt={n.path ?? `sample ${n.sample_id}`}
              title={`${n.path} (distance ${n.distance.toFixed(4)})`}
              data-id={n.sample_id}
              onClick={() => open(n.sample_id)}
            />
          ))}
        </div>
        {group.length > 0 && (
          <>
            <h3>
              Duplicates{" "}
              <button onClick={() => showGroup(sample!.duplicate_group!)}>show the group in the grid</button>
            </h3>
            <div className="strip">
              {group.map((s) => (
                <img key={s.id} src={thumbnailUrl(dataset, s.id)} alt={s.path} onClick={() => open(s.id)} />
              ))}
            </div>
          </>
        )}
      </div>
    </div>
  );
}
