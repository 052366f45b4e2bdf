import { useState } from "react";
import { api, datasetPath, type Schemas } from "./api";

/** Change every ground-truth label of one class into another, in the picked samples or, with
 * none picked, in the whole lasso: one undoable edit. */
export function RelabelBar(
  { dataset, picked, selection, classes, done }:
  {
    dataset: string; picked: Set<number>; selection: { token: string; count: number } | null;
    classes: string[]; done: () => void;
  },
) {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [note, setNote] = useState<string | null>(null);
  if (!picked.size && !selection) return null;
  const among = picked.size ? { ids: [...picked] } : { selection: selection!.token };
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
      <span>Relabel {picked.size ? `${picked.size} picked` : "the lasso"}:</span>
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
