import { useState } from "react";
import { api, datasetPath, type Schemas, type Shown } from "./api";

/** Change every ground-truth label of one class into another, in the picked samples or, with
 * none picked, in the lasso's samples the grid shows: one undoable edit. */
export function RelabelBar(
  { dataset, picked, shown, classes, done }:
  {
    dataset: string; picked: Set<number>; shown: Shown | null;
    classes: string[]; done: () => void;
  },
) {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [note, setNote] = useState<string | null>(null);
  if (!picked.size && !shown) return null;
  const among = picked.size ? { ids: [...picked] } : { filters: shown!.filters };
  const apply = async () => {
    if (!from || !to.trim()) return setNote("choose a class and its new name");
    try {
      const r = await api<Schemas["EditMade"]>(`${datasetPath(dataset)}/relabel`, {
        method: "POST",
        body: JSON.stringify({ from_class: from, to_class: to.trim(), ...among }),
      });
      setNote(`edit ${r.batch}: ${r.changes} labels ${from} → ${to.trim()}`);
      done();
    } catch (e) {
      setNote((e as Error).message);
    }
  };
  return (
    <div className="tagbar" data-testid="relabel">
      <span>Relabel {picked.size ? `${picked.size} picked` : shown!.text}:</span>
      <select aria-label="relabel from" value={from} onChange={(e) => setFrom(e.target.value)}>
        <option value="">class…</option>
        {classes.map((c) => <option key={c}>{c}</option>)}
      </select>
      →
      <input aria-label="relabel to" list="visor-relabel-classes" value={to} onChange={(e) => setTo(e.target.value)} placeholder="new class" />
      <datalist id="visor-relabel-classes">{classes.map((c) => <option key={c} value={c} />)}</datalist>
      <button onClick={apply}>Relabel</button>
      {note && <span className="note" data-testid="relabel-note">{note}</span>}
    </div>
  );
}
