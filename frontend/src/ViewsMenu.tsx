import { useEffect, useState } from "react";
import { api, datasetPath, type SavedView } from "./api";
import { filterParams, formatView, parseView, type ViewState } from "./url";

/** Saved views: pick one to see it again (its filters, sort, lasso, map, colouring), or save
 * what is on screen under a name. Kept by the server, across restarts. */
export function ViewsMenu(
  { dataset, view, selection, version, apply }:
  {
    dataset: string; view: ViewState; selection: string | null; version: number;
    apply: (view: ViewState, selection: string | null) => void;
  },
) {
  const [saved, setSaved] = useState<SavedView[]>([]);
  const [name, setName] = useState("");
  const [note, setNote] = useState<string | null>(null);
  const base = `${datasetPath(dataset)}/views`;
  useEffect(() => {
    api<SavedView[]>(base).then(setSaved, () => undefined);
  }, [base, version]);
  const save = () => {
    const filters: Record<string, string> = {};
    filterParams(view).forEach((value, key) => { filters[key] = value; });
    api<SavedView>(`${datasetPath(dataset)}/save-view`, {
      method: "POST",
      body: JSON.stringify({
        view: name, filters, selection, sort: view.sort, order: view.order,
        ui: { query: formatView({ ...view, sample: null, box: null }) },
      }),
    }).then(
      (made) => {
        setSaved((old) => [...old.filter((v) => v.name !== made.name), made].sort((a, b) => a.name.localeCompare(b.name)));
        setNote(`saved ${made.name}`);
        setName("");
      },
      (e) => setNote(e.message),
    );
  };
  return (
    <div className="views" data-testid="views">
      <label>Saved view
        <select
          aria-label="saved view"
          value=""
          onChange={(e) => {
            const chosen = saved.find((v) => v.name === e.target.value);
            if (chosen) apply({ ...parseView(chosen.ui.query ?? ""), dataset }, chosen.selection);
          }}
        >
          <option value="">{saved.length ? "open…" : "none yet"}</option>
          {saved.map((v) => <option key={v.name} value={v.name}>{v.name}</option>)}
        </select>
      </label>
      <input aria-label="view name" placeholder="name this view" value={name} onChange={(e) => setName(e.target.value)} />
      <button onClick={save} disabled={!name.trim()}>Save view</button>
      {note && <span className="note" data-testid="views-note">{note}</span>}
    </div>
  );
}
