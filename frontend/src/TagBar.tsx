import { useState } from "react";
import { api, datasetPath, type Shown } from "./api";

/** Add or remove a tag on the picked samples or, with none picked, on those a lasso holds that
 * the grid shows (the sidebar's filters apply: the faded points are left alone). */
export function TagBar(
  { dataset, picked, shown, known, done, clear }:
  {
    dataset: string; picked: Set<number>; shown: Shown | null;
    known: string[]; done: () => void; clear: () => void;
  },
) {
  const [tag, setTag] = useState("");
  const [note, setNote] = useState<string | null>(null);
  if (!picked.size && !shown) return note ? <p className="note" data-testid="tag-note">{note}</p> : null;
  const target = picked.size
    ? { body: { ids: [...picked] }, text: `${picked.size} picked` }
    : { body: { filters: shown!.filters }, text: shown!.text };
  const send = async (add: boolean) => {
    const name = tag.trim();
    if (!name) return setNote("type a tag first");
    try {
      const updated = await api<number>(`${datasetPath(dataset)}/${add ? "tag" : "untag"}`, {
        method: "POST", body: JSON.stringify({ ...target.body, tags: [name] }),
      });
      setNote(`${add ? "tagged" : "untagged"} ${updated.toLocaleString()} samples: ${name}`);
      done();
    } catch (e) {
      setNote((e as Error).message);
    }
  };
  return (
    <div className="tagbar" data-testid="tagbar">
      <span>Tag {target.text}:</span>
      <input
        list="known-tags" value={tag} placeholder="tag" aria-label="tag"
        onChange={(e) => setTag(e.target.value)}
        onKeyDown={(e) => { if (e.key === "Enter") send(true); }}
      />
      <datalist id="known-tags">{known.map((t) => <option key={t} value={t} />)}</datalist>
      <button onClick={() => send(true)}>Add</button>
      <button onClick={() => send(false)}>Remove</button>
      {picked.size > 0 && <button onClick={clear}>Unpick</button>}
      {note && <span className="note" data-testid="tag-note">{note}</span>}
    </div>
  );
}
