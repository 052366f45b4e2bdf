import { useEffect, useMemo, useRef, useState } from "react";
import { afterWrites, api, datasetPath, filterBody, watchChanges, writtenSeq, type Schemas, type Shown } from "./api";
import { setClassOrder } from "./colors";
import { EvaluationPanel } from "./EvaluationPanel";
import { ExportPanel } from "./ExportPanel";
import { ViewsMenu } from "./ViewsMenu";
import { HealthPanel } from "./HealthPanel";
import { Grid, samplesUrl } from "./Grid";
import { MapView } from "./MapView";
import type { Lasso, LassoBoxes } from "./lasso";
import { ObjectGrid } from "./ObjectGrid";
import { fetchMatching } from "./points";
import { samplesIdsUrl } from "./api";
import { SampleView } from "./SampleView";
import { RelabelBar } from "./RelabelBar";
import { FilterSections, Section } from "./Sidebar";
import { TagBar } from "./TagBar";
import { filterParams, type ViewState } from "./url";

type QualityReport = Schemas["Quality"];

type Info = Schemas["DatasetInfo"];

/** A lasso on the map (or a text search's best matches): its ids are posted once; the token
 * names them in later requests. */
export interface Selection extends Lasso {
  token: string | null;
  text?: string; // the words whose best matches these are
}

const TEXT_MATCHES = [10, 50, 100, 500]; // how many best matches a text search shows

/** The query string of the samples API for a view's filters and sort, within a selection. */
export function samplesQuery(view: ViewState, selection: string | null = null): string {
  const params = filterParams(view);
  params.set("sort", view.sort);
  params.set("order", view.order);
  if (selection) params.set("selection", selection);
  return params.toString();
}

const MAP_WIDTH = "visor:map-width";

/** One dataset: filters and sort in a sidebar, the matching count, the thumbnail grid, the map;
 * a lasso on the map and the sidebar's filters narrow each other. */
export function DatasetPage({ view, navigate }: { view: ViewState; navigate: (v: ViewState) => void }) {
  const name = view.dataset!;
  const [info, setInfo] = useState<Info | null>(null);
  const [quality, setQuality] = useState<QualityReport | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selection, setSelection] = useState<Selection | null>(null);
  const [picked, setPicked] = useState<Set<number>>(new Set());
  const [version, setVersion] = useState(0);
  // The map panel's share of the page's width, set by dragging the split, remembered.
  const [mapWidth, setMapWidth] = useState(() => Number(localStorage.getItem(MAP_WIDTH)) || 45);
  const dragSplit = (event: React.PointerEvent<HTMLDivElement>) => {
    const page = event.currentTarget.parentElement!.getBoundingClientRect();
    let width = mapWidth;
    const move = (e: PointerEvent) => {
      width = Math.min(75, Math.max(20, ((page.right - e.clientX) / page.width) * 100));
      setMapWidth(width);
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      localStorage.setItem(MAP_WIDTH, String(Math.round(width * 10) / 10));
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
    event.preventDefault();
  };
  const [openIndex, setOpenIndex] = useState<number | null>(null);
  // The lasso is highlighted on the map once the grid has its count: redrawing 1M points
  // takes the main thread for a while, and the count is what the user waits for.
  const [highlighted, setHighlighted] = useState<Int32Array | null>(null);
  const filters = useMemo(() => filterParams(view).toString(), [view]);
  // A lasso on a map of objects shows its boxes as crops (those whose sample the filters keep).
  const [shownBoxes, setShownBoxes] = useState<LassoBoxes | null>(null);
  const lassoBoxes = selection?.boxes ?? null;
  useEffect(() => {
    setShownBoxes(null);
    if (!lassoBoxes) return;
    if (!filters) return setShownBoxes(lassoBoxes);
    let live = true;
    fetchMatching(name, filters).then((matching) => {
      if (!live) return;
      const kept = new Set(matching);
      const keep = Array.from(lassoBoxes.sampleIds, (id) => kept.has(id));
      const pick = <T,>(values: ArrayLike<T>) => Array.from(values).filter((_, i) => keep[i]);
      setShownBoxes({
        labelIds: Int32Array.from(pick(lassoBoxes.labelIds)),
        sampleIds: Int32Array.from(pick(lassoBoxes.sampleIds)),
        classes: pick(lassoBoxes.classes),
      });
    }, (e) => setError(e.message));
    return () => { live = false; };
  }, [name, filters, lassoBoxes]);
  const waiting = selection !== null && selection.token === null && !lassoBoxes;
  const query = useMemo(() => samplesQuery(view, selection?.token ?? null), [view, selection]);

  useEffect(() => {
    let live = true;
    api<Info>(datasetPath(name)).then(
      (found) => { if (live) setInfo(found); },
      (e) => { if (live) setError(e.message); },
    );
    api<QualityReport>(`${datasetPath(name)}/quality?examples=0`).then(
      (found) => { if (live) setQuality(found); },
      () => undefined,
    );
    return () => { live = false; };
  }, [name, version]);
  // Changes made elsewhere (the CLI, a notebook, another tab): the page follows them. A
  // change this page made is fetched once, on its answer: its event, which follows, and any
  // other change it already covers are passed over (at 1M points a second fetch is 17 MB);
  // an event that arrives before its operation's answer waits for it (`afterWrites`).
  const covered = useRef(0);
  const changed = () => {
    covered.current = Math.max(covered.current, writtenSeq());
    setVersion((v) => v + 1);
  };
  useEffect(
    () => watchChanges((change) => afterWrites(() => {
      if (change.what === "reload") covered.current = 0; // its server may count anew
      else if (change.seq <= covered.current) return;
      if (change.dataset === name || change.dataset === null) setVersion((v) => v + 1);
    })),
    [name],
  );
  useEffect(() => {
    if (waiting) {
      // With no other filter a lasso's count is its number of points: shown at once, while
      // its ids go to the server (the grid waits for the server's answer).
      setTotal(filters ? null : selection!.ids.length);
      if (!filters) performance.mark("visor:count");
      return;
    }
    // Only the latest request's answer counts: a change event and a new filter can send two
    // at once, and they may come back in either order.
    let live = true;
    api<Schemas["SamplePage"]>(samplesUrl(name, query, 0, 1)).then(
      (body) => {
        if (!live) return;
        setTotal(body.total);
        setHighlighted(selection?.boxes ? Int32Array.from(selection.boxes.labelIds).sort() : selection?.ids ?? null);
        performance.mark("visor:count");
      },
      (e) => { if (live) setError(e.message); },
    );
    return () => { live = false; };
  }, [name, query, waiting, version]); // eslint-disable-line react-hooks/exhaustive-deps

  const [searchNote, setSearchNote] = useState<string | null>(null);
  const searchText = (text: string, k: string) => {
    setSearchNote(null);
    if (!text.trim()) return lasso(null);
    const params = new URLSearchParams({ text, k });
    api<Schemas["Neighbours"]>(`${datasetPath(name)}/similar?${params}`).then(
      (found) => {
        const ids = Int32Array.from(found.neighbours.map((n) => n.sample_id)).sort();
        lasso({ ids, polygon: [], text });
        if (found.warning) setSearchNote(found.warning);
      },
      (e) => setSearchNote(e.message),
    );
  };

  const lasso = (found: (Lasso & { text?: string }) | null) => {
    setSelection(found && { ...found, token: null });
    if (!found) return;
    // Posted with the sidebar's filters, the answer also has the count the grid will show.
    fetch(`${datasetPath(name)}/selections?${filters}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: found.ids.buffer as ArrayBuffer, // int32, little-endian on every platform a browser runs on
    })
      .then(async (r) => {
        const body = await r.json();
        if (!r.ok) throw new Error(body?.error?.message ?? `HTTP ${r.status}`);
        performance.mark("visor:selection");
        if (body.matching !== undefined) {
          setTotal(body.matching);
          performance.mark("visor:count");
        }
        setSelection((now) => (now?.ids === found.ids ? { ...now, token: body.selection } : now));
      })
      .catch((e) => setError(e.message));
  };

  const classes = useMemo(() => {
    const names = info ? [...new Set(info.classes.flatMap((c) => (c.class === null ? [] : [c.class])))].sort() : [];
    setClassOrder(names); // before the grid, map and sample view draw a class colour
    return names;
  }, [info]);

  // With no sample picked, the bars act on the lasso's samples the grid shows (its count), not
  // on the points the sidebar's filters fade.
  const shown: Shown | null = selection?.token && total !== null ? {
    filters: filterBody(filters, selection.token),
    text: `all ${total.toLocaleString()} ${filters ? "shown " : ""}in the ${selection.text === undefined ? "lasso" : "search"}`,
  } : null;

  if (error) return <main><p className="error">{error}</p></main>;
  const set = (patch: Partial<ViewState>) => navigate({ ...view, ...patch, sample: null, box: null });
  const openSample = (id: number, index: number | null = null, box: number | null = null) => {
    setOpenIndex(index);
    navigate({ ...view, sample: id, box });
  };
  const step = (delta: number) => {
    if (openIndex === null || total === null) return;
    const next = openIndex + delta;
    if (next < 0 || next >= total) return;
    api<Schemas["SamplePage"]>(samplesUrl(name, query, next, 1)).then((r) => {
      if (r.items.length) openSample(r.items[0].id, next);
    });
  };
  const pick = (id: number) => setPicked((old) => {
    const next = new Set(old);
    if (!next.delete(id)) next.add(id);
    return next;
  });
  return (
    <main className="dataset">
      <aside className="sidebar">
        <Section title="Views">
        <ViewsMenu
          dataset={name}
          view={view}
          selection={selection?.token ?? null}
          version={version}
          apply={(saved, token) => {
            navigate(saved);
            if (!token) return setSelection(null);
            // A saved lasso: its ids again, from the server, so the grid and map show it.
            fetch(samplesIdsUrl(name, `selection=${token}`))
              .then((r) => r.arrayBuffer())
              .then((bytes) => setSelection({ ids: new Int32Array(bytes), polygon: [], token }))
              .catch((e) => setError(e.message));
          }}
        />
        </Section>
        <FilterSections name={name} view={view} set={set} info={info} classes={classes} quality={quality} version={version} />
        <Section title="Export">
        <ExportPanel dataset={name} filters={filters} selection={selection?.token ?? null} />
        </Section>
      </aside>
      <section className="results">
        <form
          className="text-search"
          onSubmit={(e) => {
            e.preventDefault();
            const form = new FormData(e.currentTarget);
            searchText(String(form.get("text") ?? ""), String(form.get("k") ?? "100"));
          }}
        >
          <input
            name="text"
            type="search"
            aria-label="search by text"
            placeholder="Search images by text (CLIP / SigLIP vectors)"
          />
          <select name="k" aria-label="how many matches" defaultValue="100">
            {TEXT_MATCHES.map((k) => <option key={k} value={k}>best {k}</option>)}
          </select>
          <button type="submit">Search</button>
          {searchNote && <span className="note" data-testid="search-note">{searchNote}</span>}
        </form>
        <p className="count">
          {shownBoxes ? (
            <span data-testid="count">{`${shownBoxes.labelIds.length.toLocaleString()} boxes`}</span>
          ) : (
            <span data-testid="count">{total === null ? "…" : `${total.toLocaleString()} samples`}</span>
          )}
          {view.cluster !== null && (
            <>
              {" "}in cluster {view.cluster}{" "}
              <button data-testid="clear-cluster" onClick={() => set({ cluster: null })}>Show all</button>
            </>
          )}
          {selection && (
            <>
              {selection.text !== undefined
                ? <> among the best {selection.ids.length.toLocaleString()} matches for “{selection.text}”{" "}</>
                : <> in the lasso ({(selection.boxes?.labelIds ?? selection.ids).length.toLocaleString()} points){" "}</>}
              <button data-testid="clear-selection" onClick={() => setSelection(null)}>Clear selection</button>
            </>
          )}
        </p>
        <TagBar
          dataset={name}
          picked={picked}
          shown={shown}
          known={info ? Object.keys(info.tags) : []}
          done={() => { setPicked(new Set()); changed(); }}
          clear={() => setPicked(new Set())}
        />
        <RelabelBar
          dataset={name}
          picked={picked}
          shown={shown}
          classes={classes}
          done={changed}
        />
        {shownBoxes && (
          <ObjectGrid dataset={name} boxes={shownBoxes} onOpen={(sampleId, labelId) => openSample(sampleId, null, labelId)} />
        )}
        {info && total !== null && !waiting && !lassoBoxes && (
          <Grid
            dataset={name}
            query={query}
            total={total}
            boxes={view.boxes}
            cell={view.cell}
            picked={picked}
            version={version}
            onPick={pick}
            onOpen={(index, id) => openSample(id, index)}
          />
        )}
      </section>
      <div
        className="splitter"
        role="separator"
        aria-label="resize the map"
        aria-orientation="vertical"
        data-testid="splitter"
        onPointerDown={dragSplit}
      />
      <section
        className="map-panel"
        style={{ width: `${mapWidth}%` }}
        data-lasso={selection ? JSON.stringify(selection.polygon) : ""}
      >
        <div className="map-stack">
          <div className="panel-tabs" role="tablist">
            {(["map", "evaluation", "health"] as const).map((tab) => (
              <button
                key={tab}
                role="tab"
                aria-selected={view.tab === tab}
                className={view.tab === tab ? "active" : undefined}
                onClick={() => navigate({ ...view, tab })}
              >
                {tab === "map" ? "Map" : tab === "evaluation" ? "Evaluation" : "Health"}
              </button>
            ))}
          </div>
          {info && view.tab === "map" && <MapView
            dataset={name}
            mapId={view.map}
            color={view.color}
            evaluation={view.evaluation}
            filters={filters}
            lassoed={selection ? highlighted : null}
            version={version}
            onView={(patch) => navigate({ ...view, ...patch })}
            onSelect={lasso}
            onOpen={(id, labelId) => openSample(id, null, labelId ?? null)}
            cluster={view.cluster}
          />}
          {info && view.tab === "health" && (
            <HealthPanel dataset={name} version={version} open={(id) => openSample(id)} navigate={(patch) => set(patch)} />
          )}
          {info && view.tab === "evaluation" && (
            <EvaluationPanel
              dataset={name}
              splits={Object.keys(info.splits).filter((s) => s !== "(none)")}
              view={view}
              version={version}
              navigate={(patch) => set(patch)}
            />
          )}
        </div>
      </section>
      {info && view.sample !== null && (
        <SampleView
          dataset={name}
          id={view.sample}
          evaluation={view.evaluation}
          cell={view.cell}
          box={view.box}
          classes={classes}
          open={(id) => openSample(id)}
          openBox={(sampleId, labelId) => navigate({ ...view, sample: sampleId, box: labelId })}
          showGroup={(group) => set({ group, duplicates: false })}
          step={step}
          close={() => navigate({ ...view, sample: null, box: null })}
        />
      )}
    </main>
  );
}
