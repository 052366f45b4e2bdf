import { useState } from "react";
import type { Schemas } from "./api";
import { DuplicatesPanel } from "./DuplicatesPanel";
import type { BoxKinds, ObjectIssue, ViewState } from "./url";

const SORTS = ["id", "filename", "size_bytes", "width", "height", "num_labels", "uniqueness", "duplicate_group", "label_quality", "detection_quality", "cluster"];
const EVALUATION_SORTS = ["eval.errors", "eval.fp", "eval.fn", "eval.tp"]; // with an evaluation
const BOXES: [BoxKinds, string][] = [["all", "ground truth + predictions"], ["gt", "ground truth"], ["prediction", "predictions"], ["none", "none"]];

/** A group of the sidebar's controls that folds away; folded or not is remembered. */
export function Section({ title, children }: { title: string; children: React.ReactNode }) {
  const key = `visor:section:${title}`;
  const [open, setOpen] = useState(() => localStorage.getItem(key) !== "closed");
  return (
    <details
      className="section"
      open={open}
      onToggle={(e) => {
        const now = (e.target as HTMLDetailsElement).open;
        setOpen(now);
        localStorage.setItem(key, now ? "open" : "closed");
      }}
    >
      <summary>{title}</summary>
      {children}
    </details>
  );
}

/** A select of one filter: "all", or one of `options`. */
function Choice({ label, value, options, pick }: {
  label: string; value: string | null; options: string[]; pick: (value: string | null) => void;
}) {
  return (
    <label>{label}
      <select value={value ?? ""} onChange={(e) => pick(e.target.value || null)}>
        <option value="">all</option>
        {options.map((o) => <option key={o}>{o}</option>)}
      </select>
    </label>
  );
}

/** A checkbox of one filter, `label` naming it to assistive tools. */
function Check({ label, checked, pick, children }: {
  label: string; checked: boolean; pick: (checked: boolean) => void; children: React.ReactNode;
}) {
  return (
    <label className="check">
      <input type="checkbox" aria-label={label} checked={checked} onChange={(e) => pick(e.target.checked)} />
      {children}
    </label>
  );
}

const fraction = (text: string) => (text === "" ? null : Math.min(1, Math.max(0, Number(text))));

/** The sidebar's filters of a dataset's samples: split, class, tag, file name, sort and boxes;
 * duplicates and leaks; label, box and image quality, uniqueness. */
export function FilterSections({ name, view, set, info, classes, quality, version }: {
  name: string;
  view: ViewState;
  set: (patch: Partial<ViewState>) => void;
  info: Schemas["DatasetInfo"] | null;
  classes: string[];
  quality: Schemas["Quality"] | null;
  version: number;
}) {
  return (
    <>
      <Section title="Filters">
      <Choice label="Split" value={view.split} options={info ? Object.keys(info.splits) : []} pick={(split) => set({ split })} />
      <Choice label="Class" value={view.cls} options={classes} pick={(cls) => set({ cls })} />
      <Choice label="Tag" value={view.tag} options={info ? Object.keys(info.tags) : []} pick={(tag) => set({ tag })} />
      <label>File name
        <input
          defaultValue={view.filename ?? ""}
          placeholder="contains…"
          onKeyDown={(e) => {
            if (e.key === "Enter") set({ filename: (e.target as HTMLInputElement).value || null });
          }}
        />
      </label>
      <label>Sort
        <select value={view.sort} onChange={(e) => set({ sort: e.target.value })}>
          {[...SORTS, ...(view.evaluation ? EVALUATION_SORTS : [])].map((s) => <option key={s}>{s}</option>)}
        </select>
        <select value={view.order} onChange={(e) => set({ order: e.target.value as "asc" | "desc" })}>
          <option value="asc">ascending</option>
          <option value="desc">descending</option>
        </select>
      </label>
      <label>Boxes
        <select value={view.boxes} onChange={(e) => set({ boxes: e.target.value as BoxKinds })}>
          {BOXES.map(([value, text]) => <option key={value} value={value}>{text}</option>)}
        </select>
      </label>
      </Section>
      <Section title="Duplicates">
      <label>Duplicates
        <select
          value={view.group !== null ? "group" : view.leaked ? "leaked" : view.duplicates ? "yes" : ""}
          onChange={(e) => set({ duplicates: e.target.value === "yes", leaked: e.target.value === "leaked", group: null })}
        >
          <option value="">all samples</option>
          <option value="yes">only those with duplicates</option>
          <option value="leaked">train/test leaks (copies)</option>
          {view.group !== null && <option value="group">group {view.group}</option>}
        </select>
      </label>
      <DuplicatesPanel dataset={name} version={version} />
      </Section>
      <Section title="Quality and labels">
      <Check label="likely label errors" checked={view.labelIssue} pick={(labelIssue) => set({ labelIssue })}>
        only likely label errors
      </Check>
      <Check label="detection check" checked={view.detectionIssue} pick={(detectionIssue) => set({ detectionIssue })}>
        only images the detection check flags
      </Check>
      <label>Unusual boxes
        <select
          aria-label="box analysis"
          value={view.objectIssue ?? ""}
          onChange={(e) => set({ objectIssue: (e.target.value || null) as ObjectIssue | null })}
        >
          <option value="">all samples</option>
          <option value="outlier">holding an outlier box</option>
          <option value="duplicate">holding a near-identical box</option>
        </select>
      </label>
      <label>Image quality
        <select
          aria-label="image quality"
          value={view.quality ?? ""}
          onChange={(e) => set({ quality: e.target.value || null })}
          disabled={!quality?.measured}
          title={quality?.measured ? undefined : `not measured yet (visor quality ${name})`}
        >
          <option value="">{quality?.measured ? "all images" : "not measured yet"}</option>
          {quality?.issues.filter((i) => i.count > 0 || i.issue === view.quality).map((i) => (
            <option key={i.issue} value={i.issue}>
              {i.issue.replace(/_/g, " ")} ({i.count}, {(i.share * 100).toFixed(1)}%)
            </option>
          ))}
        </select>
      </label>
      <fieldset className="range">
        <legend>Uniqueness</legend>
        {(["uniquenessMin", "uniquenessMax"] as const).map((key) => (
          <input
            key={`${key}-${view[key]}`}
            type="number" min={0} max={1} step={0.05}
            aria-label={key === "uniquenessMin" ? "uniqueness from" : "uniqueness to"}
            placeholder={key === "uniquenessMin" ? "from 0" : "to 1"}
            defaultValue={view[key] ?? ""}
            onKeyDown={(e) => { if (e.key === "Enter") (e.target as HTMLInputElement).blur(); }}
            onBlur={(e) => {
              const value = fraction(e.target.value);
              if (value !== view[key]) set({ [key]: value });
            }}
          />
        ))}
      </fieldset>
      </Section>
    </>
  );
}
