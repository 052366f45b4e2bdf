import { useCallback, useEffect, useState } from "react";
import { DatasetPage } from "./DatasetPage";
import { DatasetsPage } from "./DatasetsPage";
import { formatView, parseView, type ViewState } from "./url";

/** The view is the URL's query string: navigation pushes a new one, back/forward restore. */
export function App() {
  const [view, setView] = useState<ViewState>(() => parseView(window.location.search));
  useEffect(() => {
    const restore = () => setView(parseView(window.location.search));
    window.addEventListener("popstate", restore);
    return () => window.removeEventListener("popstate", restore);
  }, []);
  const navigate = useCallback((next: ViewState) => {
    window.history.pushState(null, "", formatView(next) || window.location.pathname);
    setView(next);
  }, []);
  return (
    <div className="app">
      <header>
        <a href="/" onClick={(e) => { e.preventDefault(); navigate({ ...view, dataset: null }); }}>
          Visor
        </a>
        {view.dataset && <span className="crumb">/ {view.dataset}</span>}
      </header>
      {view.dataset ? (
        <DatasetPage view={view} navigate={navigate} />
      ) : (
        <DatasetsPage open={(name) => navigate({ ...view, dataset: name })} />
      )}
    </div>
  );
}
