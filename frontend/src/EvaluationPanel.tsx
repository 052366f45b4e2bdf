import { useEffect, useMemo, useState } from "react";
import { api, datasetPath, runJob, type Job, type Schemas } from "./api";
import { classColor } from "./colors";
import { JobBar } from "./JobBar";
import type { Outcome, ViewState } from "./url";

type ClassRow = Schemas["ClassMetrics"];
export type Evaluation = Schemas["Evaluation"];

const COLUMNS: [keyof ClassRow, string][] = [
  ["class", "class"], ["ap", "AP"], ["ap50", "AP50"], ["precision", "prec."], ["recall", "recall"],
  ["tp", "TP"], ["fp", "FP"], ["fn", "FN"],
];
const OUTCOMES: [Outcome | "", string][] = [
  ["", "all samples"], ["fp", "with a false positive"], ["fn", "with a missed box"],
  ["error", "with any error"], ["confused", "with a class confusion"], ["tp", "with a true positive"],
];
const fmt = (v: number | null | undefined) => (v === null || v === undefined || v < 0 ? "–" : v.toFixed(3));

/** An evaluation of a prediction source: COCO summary, a sortable per-class table, the PR
 * curves at its IoU, and the confusion matrix as a heat map whose cells filter the grid to
 * their samples with their boxes highlighted. Without one, a way to start one. */
export function EvaluationPanel(
  { dataset, splits, view, version, navigate }:
  {
    dataset: string; splits: string[]; view: ViewState; version: number;
    navigate: (patch: Partial<ViewState>) => void;
  },
) {
  const [list, setList] = useState<{ name: string }[] | null>(null);
  const [sources, setSources] = useState<Record<string, number>>({});
  const [evaluation, setEvaluation] = useState<Evaluation | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [sort, setSort] = useState<{ key: keyof ClassRow; desc: boolean }>({ key: "ap", desc: false });
  const base = `${datasetPath(dataset)}/evaluations`;

  useEffect(() => {
    let live = true;
    api<Schemas["EvaluationRow"][]>(base).then((found) => { if (live) setList(found); }, (e) => setError(e.message));
    api<Record<string, number>>(`${datasetPath(dataset)}/predictions`).then((s) => { if (live) setSources(s); });
    return () => { live = false; };
  }, [base, dataset, version]);
  const chosen = view.evaluation ?? (list && list.length ? list[list.length - 1].name : null);
  useEffect(() => {
    if (!chosen) return setEvaluation(null);
    let live = true;
    api<Evaluation>(`${base}/${encodeURIComponent(chosen)}`).then(
      (found) => { if (live) setEvaluation(found); },
      (e) => { if (live) setError(e.message); },
    );
    return () => { live = false; };
  }, [base, chosen, version]);
  useEffect(() => {  // the panel's evaluation is the view's: boxes, filters and sorts follow it
    if (chosen && view.evaluation !== chosen) navigate({ evaluation: chosen });
  }, [chosen]); // eslint-disable-line react-hooks/exhaustive-deps

  const rows = useMemo(() => {
    const found = [...(evaluation?.metrics.classes ?? [])];
    const value = (r: ClassRow) => r[sort.key] ?? -1;
    found.sort((a, b) => {
      const [x, y] = [value(a), value(b)];
      const order = typeof x === "string" ? String(x).localeCompare(String(y)) : (x as number) - (y as number);
      return sort.desc ? -order : order;
    });
    return found;
  }, [evaluation, sort]);

  const start = async (source: string, split: string | null) => {
    setError(null);
    const ended = await runJob<"Evaluate">(`${datasetPath(dataset)}/evaluate`, { source, split }, setJob);
    const made = (ended as Job & { result?: { evaluation?: string } }).result?.evaluation;
    if (ended.state !== "done") setError(ended.error ?? ended.state);
    else navigate({ evaluation: made ?? source });
  };

  if (list === null) return <div className="evaluation">Loading…</div>;
  const names = Object.keys(sources);
  const predicted = evaluation?.metrics.predicted_splits ?? [];
  const only = predicted.length === 1 ? predicted[0] : null; // the split to evaluate instead
  return (
    <div className="evaluation" data-testid="evaluation-panel">
      <div className="evaluation-tools">
        {list.length > 0 && (
          <label>Evaluation{" "}
            <select
              aria-label="evaluation"
              value={chosen ?? ""}
              onChange={(e) => navigate({ evaluation: e.target.value, cell: null, outcome: null })}
            >
              {list.map((e) => <option key={e.name}>{e.name}</option>)}
            </select>
          </label>
        )}
        {names.length > 0 && (
          <EvaluateButton sources={names} splits={splits} busy={job?.state === "running"} start={start} />
        )}
      </div>
      {job && job.state !== "done" && <JobBar job={job} />}
      {error && <p className="error">{error}</p>}
      {!list.length && (
        <p className="hint">
          No evaluation yet{names.length ? "" : ` (import predictions: visor import-predictions ${dataset} FILE --source NAME)`}.
        </p>
      )}
      {evaluation && (
        <>
          <p className="summary" data-testid="evaluation-summary">
            AP {fmt(evaluation.metrics.summary.AP)} · AP50 {fmt(evaluation.metrics.summary.AP50)} · AP75{" "}
            {fmt(evaluation.metrics.summary.AP75)} · AR100 {fmt(evaluation.metrics.summary.AR100)}
            <br />
            at IoU {evaluation.params.iou}: {evaluation.metrics.counts.tp} TP, {evaluation.metrics.counts.fp} FP,{" "}
            {evaluation.metrics.counts.fn} FN (precision {fmt(evaluation.metrics.counts.precision)}, recall{" "}
            {fmt(evaluation.metrics.counts.recall)})
            {evaluation.params.split && <> · on split {evaluation.params.split}</>}
          </p>
          {evaluation.metrics.warning && (
            <p className="warning" data-testid="evaluation-warning">
              {evaluation.metrics.warning}
              {only && (
                <>
                  {" "}
                  <button disabled={job?.state === "running"} onClick={() => start(evaluation.source, only)}>
                    Evaluate on split {only}
                  </button>
                </>
              )}
            </p>
          )}
          <label>Show samples{" "}
            <select
              aria-label="outcome"
              value={view.outcome ?? ""}
              onChange={(e) => navigate({ outcome: (e.target.value || null) as Outcome | null, cell: null })}
            >
              {OUTCOMES.map(([value, text]) => <option key={value} value={value}>{text}</option>)}
            </select>
          </label>
          {rows.length > 0 && (
            <table className="classes" data-testid="class-table">
              <thead>
                <tr>
                  {COLUMNS.map(([key, title]) => (
                    <th
                      key={key}
                      onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : false }))}
                      aria-sort={sort.key === key ? (sort.desc ? "descending" : "ascending") : undefined}
                    >
                      {title}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.class} data-class={r.class}>
                    <td><span className="swatch" style={{ background: classColor(r.class) }} />{r.class}</td>
                    <td>{fmt(r.ap)}</td><td>{fmt(r.ap50)}</td><td>{fmt(r.precision)}</td><td>{fmt(r.recall)}</td>
                    <td>{r.tp}</td><td>{r.fp}</td><td>{r.fn}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <PrCurves curves={evaluation.metrics.curves} />
          <ConfusionMatrix
            confusion={evaluation.metrics.confusion}
            cell={view.cell}
            pick={(cell) => navigate({ cell, outcome: null })}
          />
        </>
      )}
    </div>
  );
}

/** Evaluate a prediction source, on every image or on one split's (the one the model ran on:
 * elsewhere every box would count as missed). */
function EvaluateButton(
  { sources, splits, busy, start }:
  { sources: string[]; splits: string[]; busy: boolean; start: (s: string, split: string | null) => void },
) {
  const [source, setSource] = useState(sources[0]);
  const [split, setSplit] = useState("");
  return (
    <span className="evaluate">
      <label>predictions{" "}
        <select aria-label="prediction source" value={source} onChange={(e) => setSource(e.target.value)}>
          {sources.map((s) => <option key={s}>{s}</option>)}
        </select>
      </label>{" "}
      {splits.length > 1 && (
        <>
          <select aria-label="evaluate on" value={split} onChange={(e) => setSplit(e.target.value)}>
            <option value="">all images</option>
            {splits.map((s) => <option key={s} value={s}>split {s}</option>)}
          </select>{" "}
        </>
      )}
      <button disabled={busy} onClick={() => start(source, split || null)}>Evaluate</button>
    </span>
  );
}

const PLOT = 220;

/** Precision against recall for each class (101 recall points), at the evaluation's IoU. */
function PrCurves({ curves }: { curves: Evaluation["metrics"]["curves"] }) {
  const entries = Object.entries(curves.precision);
  if (!entries.length) return null;
  const x = (r: number) => 28 + r * PLOT;
  const y = (p: number) => 8 + (1 - p) * PLOT;
  return (
    <figure className="pr-curves">
      <svg width={PLOT + 40} height={PLOT + 30} data-testid="pr-curves" aria-label="precision-recall curves">
        <rect x={x(0)} y={y(1)} width={PLOT} height={PLOT} className="frame" />
        {entries.map(([name, values]) => (
          <polyline
            key={name}
            data-class={name}
            fill="none"
            stroke={classColor(name)}
            strokeWidth={1.5}
            points={values.map((p, i) => `${x(curves.recall[i])},${y(Math.max(p, 0))}`).join(" ")}
          />
        ))}
        <text x={x(0)} y={PLOT + 24}>0</text>
        <text x={x(1)} y={PLOT + 24} textAnchor="end">recall 1</text>
        <text x={2} y={y(1) + 4}>1</text>
      </svg>
      <figcaption>precision / recall at IoU {curves.iou}</figcaption>
    </figure>
  );
}

/** Rows: ground truth, columns: predictions, the last of each the background; a cell's
 * shade is its share of its row. */
function ConfusionMatrix(
  { confusion, cell, pick }:
  { confusion: Evaluation["metrics"]["confusion"]; cell: [string, string] | null; pick: (c: [string, string] | null) => void },
) {
  const labels = [...confusion.classes, ""];
  const shown = (name: string) => name || "background";
  return (
    <div className="scrolls" data-testid="confusion-box">
    <table className="confusion" data-testid="confusion">
      <caption>ground truth ↓ · predicted →</caption>
      <thead>
        <tr><th />{labels.map((l) => <th key={l} title={shown(l)}>{shown(l)}</th>)}</tr>
      </thead>
      <tbody>
        {confusion.matrix.map((row, i) => {
          const total = row.reduce((a, b) => a + b, 0) || 1;
          return (
            <tr key={labels[i]}>
              <th>{shown(labels[i])}</th>
              {row.map((count, j) => {
                const here: [string, string] = [labels[i], labels[j]];
                const active = cell !== null && cell[0] === here[0] && cell[1] === here[1];
                const share = count / total;
                return (
                  <td
                    key={j}
                    data-cell={JSON.stringify(here)}
                    className={active ? "active" : undefined}
                    style={{ background: `rgba(${i === j ? "37, 99, 235" : "214, 39, 40"}, ${count ? 0.1 + 0.9 * share : 0})` }}
                    onClick={() => count > 0 && pick(active ? null : here)}
                    title={`${shown(here[0])} → ${shown(here[1])}: ${count}`}
                  >
                    {count || ""}
                  </td>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
    </div>
  );
}
