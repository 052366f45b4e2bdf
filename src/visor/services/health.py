"""One health report: what is wrong with a dataset, from every signal Visor has computed.

Each row is a kind of problem with its count, its share of the dataset, a few of the worst
samples and the samples filter that shows all of them (`filter`, as the samples API takes it);
a signal not computed yet says which command computes it. Nothing here computes a signal: the
jobs do (duplicates, uniqueness, quality, evaluate); this reads what they stored.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from visor.embedding.models import with_weights_warning
from visor.services.grouping import outlier_threshold
from visor.services.labels import not_applicable as label_reason
from visor.services.labels import summary as label_summary
from visor.services.quality import report as quality_report
from visor.store import Store
from visor.store import analyses as analysis_rows
from visor.store import clusters as cluster_rows
from visor.store import label_quality as label_rows
from visor.store import objects as object_rows
from visor.store import samples as sample_rows
from visor.store.samples import SampleFilter

EXAMPLES = 12


def leaks(store: Store, dataset_id: int, examples: int = EXAMPLES) -> dict[str, Any]:
    """Duplicate groups (exact and near) whose members sit in more than one split: per split
    pair, the groups and samples; the samples of such groups, worst (largest group) first."""
    rows = analysis_rows.cross_split_groups(store, dataset_id)
    pairs: dict[str, dict[str, int]] = {}
    samples = 0
    for _, splits, size in rows:
        samples += size
        for a, b in itertools.combinations(sorted(splits), 2):
            found = pairs.setdefault(f"{a} / {b}", {"groups": 0, "samples": 0})
            found["groups"] += 1
            found["samples"] += size
    first = [g for g, _, _ in rows[:examples]]
    return {
        "groups": len(rows),
        "samples": samples,
        "pairs": pairs,
        "examples": analysis_rows.group_members(store, dataset_id, first, examples),
    }


def outliers(store: Store, dataset_id: int, examples: int = EXAMPLES) -> dict[str, Any] | None:
    ids, scores = analysis_rows.uniqueness_scores(store, dataset_id)
    threshold = outlier_threshold(scores)
    if threshold is None:
        return None
    above = scores >= threshold
    order = np.argsort(-scores[above], kind="stable")[:examples]
    return {
        "threshold": round(threshold, 4),
        "count": int(above.sum()),
        "scored": len(scores),
        "examples": ids[above][order].astype(int).tolist(),
    }


def _numbered_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Each distinct warning of the rows once, in the order the rows first give it, and on
    each row with a warning its number (`note`, from 1): a report says each warning once and
    marks the rows it is about, [1], [2]."""
    notes: list[str] = []
    for row in rows:
        if row.get("warning"):
            if row["warning"] not in notes:
                notes.append(row["warning"])
            row["note"] = notes.index(row["warning"]) + 1
    return notes


def health(store: Store, dataset: dict[str, Any], examples: int = EXAMPLES) -> dict[str, Any]:
    dataset_id, total = dataset["id"], max(int(dataset["num_samples"]), 1)
    name = dataset["name"]
    rows: list[dict[str, Any]] = []

    def row(kind: str, title: str, count: int | None, **extra: Any) -> None:
        share = None if count is None else round(count / total, 4)
        rows.append({"kind": kind, "title": title, "count": count, "share": share, **extra})

    run = analysis_rows.last_run(store, dataset_id, "duplicates")
    if run is None:
        hint = f"visor duplicates {name}"
        row("duplicates", "exact and near-duplicates", None, todo=hint)
        row("leaks", "copies across splits (train/test leakage)", None, todo=hint)
    else:
        run = with_weights_warning(run)
        summary = run["summary"]
        row(
            "duplicates",
            "exact and near-duplicates",
            int(summary.get("samples_in_groups", 0)),
            examples=analysis_rows.group_members(store, dataset_id, None, examples),
            filter={"has_duplicates": True},
            detail={
                "groups": summary.get("groups"),
                "removable": summary.get("removable"),
                "threshold": run["params"].get("threshold"),
            },
            warning=run.get("warning"),
        )
        leaked = leaks(store, dataset_id, examples)
        row(
            "leaks",
            "copies across splits (train/test leakage)",
            leaked["samples"],
            examples=leaked["examples"],
            filter={"leaked": True},
            detail={"groups": leaked["groups"], "pairs": leaked["pairs"]},
            warning=run.get("warning"),
        )
    found = outliers(store, dataset_id, examples)
    if found is None:
        row("outliers", "least typical images", None, todo=f"visor uniqueness {name}")
    else:
        scored_by = analysis_rows.last_run(store, dataset_id, "uniqueness")
        row(
            "outliers",
            "least typical images",
            found["count"],
            examples=found["examples"],
            filter={"uniqueness_min": found["threshold"]},
            detail={"threshold": found["threshold"], "rule": "median + 3 x 1.4826 x MAD"},
            warning=with_weights_warning(scored_by or {}).get("warning"),
        )
    labels = label_summary(store, dataset_id, examples) or {}
    if "scored" not in labels:
        reason = label_reason(store, dataset)
        todo = reason or f"visor label-errors {name}"
        image_labels, _ = label_rows.ground_truth_counts(store, dataset_id)
        if not reason and not image_labels and not object_rows.status(store, dataset_id):
            todo = (
                f"boxes need a vector per box: visor embed {name} --objects, then "
                f"visor label-errors {name}"
            )
        row("label_errors", "likely label errors", None, todo=todo)
    else:
        row(
            "label_errors",
            "likely label errors",
            labels["flagged_samples"],
            examples=labels["examples"],
            filter={"label_issue": True},
            detail={"labels_scored": labels["scored"], "labels_flagged": labels["flagged"]},
            warning=labels.get("warning"),
        )
    detection = labels.get("detection")
    if detection is not None:
        row(
            "detection_label_errors",
            f"label errors cleanlab finds with the predictions of {detection['source']}",
            detection["flagged"],
            examples=detection["examples"],
            filter={"detection_issue": True},
            detail={"images_checked": detection["checked"], "boxes": detection["boxes_flagged"]},
        )
    else:
        sources = sorted(sample_rows.prediction_sources(store, dataset_id))
        if sources:  # a check that needs a choice: which model's predictions
            row(
                "detection_label_errors",
                "label errors cleanlab finds with a model's predictions",
                None,
                todo=f"visor label-errors {name} --predictions {sources[0]}",
                choices=sources,
            )
    boxes = object_rows.scores_summary(store, dataset_id, examples)
    if boxes is not None:
        boxes = with_weights_warning(boxes)
        for kind, title, count, key, issue in (
            ("object_outliers", "least typical boxes", boxes["outliers"], "outlier", "outlier"),
            (
                "duplicate_boxes",
                "near-identical boxes",
                boxes["boxes_in_duplicate_groups"],
                "duplicate_group",
                "duplicate",
            ),
        ):
            row(
                kind,
                title,
                count,
                examples=object_rows.samples_with(store, dataset_id, key, examples),
                filter={"object_issue": issue},
                share=round(count / max(boxes["scored"], 1), 4),  # of the boxes, not samples
                detail={"boxes_scored": boxes["scored"], "filter_shows": "samples holding one"},
                warning=boxes.get("warning"),
            )
    elif _has_boxes(store, dataset_id):
        has_vectors = bool(object_rows.status(store, dataset_id))
        todo = f"visor objects {name}"
        if not has_vectors:
            todo = f"visor embed {name} --objects, then {todo}"
        row("object_outliers", "least typical boxes", None, todo=todo)
    quality = quality_report(store, dataset, examples)
    if not quality["measured"]:
        row("quality", "image quality", None, todo=f"visor quality {name} (or visor embed {name})")
    for issue in quality["issues"] if quality["measured"] else []:
        row(
            f"quality:{issue['issue']}",
            issue["issue"].replace("_", " "),
            issue["count"],
            examples=issue["examples"],
            filter={"quality": issue["issue"]},
        )
    mixing = mixed_clusters(store, dataset_id, examples)
    if mixing is not None:
        largest = mixing["clusters"][0] if mixing["clusters"] else None
        row(
            "mixed_clusters",
            "map regions mixing classes (none over 60%)",
            mixing["samples"],
            examples=mixing["examples"],
            filter={"cluster": largest["cluster"], "cluster_map": mixing["map_id"]}
            if largest
            else None,
            detail={
                "map_id": mixing["map_id"],
                "clusters": len(mixing["clusters"]),
                "of": mixing["of"],
                "filter_shows": "the largest of them",
                "largest": [
                    f"{c['cluster']}: {c['label']} ({c['size']})" for c in mixing["clusters"][:5]
                ],
            },
        )
    zero_shot = analysis_rows.last_run(store, dataset_id, "zero_shot")
    tag = (zero_shot or {}).get("summary", {}).get("disagree_tag")
    if zero_shot is not None and tag:
        shown = sample_rows.filtered_ids(store, dataset_id, SampleFilter(tag=tag))
        row(
            "zero_shot_disagrees",
            f"labels {zero_shot['model']} disagrees with (zero-shot, no detector needed)",
            len(shown),
            examples=[int(i) for i in shown[:examples]],
            filter={"tag": tag},
            detail={"labels": len(zero_shot["summary"]["labels"]), "tag": tag},
            warning=with_weights_warning(zero_shot).get("warning"),
        )
    notes = _numbered_notes(rows)
    return {"dataset": name, "samples": int(dataset["num_samples"]), "rows": rows, "notes": notes}


def mixed_clusters(store: Store, dataset_id: int, examples: int) -> dict[str, Any] | None:
    """The default map's density clusters whose members' classes disagree (largest first),
    the samples in them and the first few; None when the map was never clustered."""
    default = store.query_one(
        "SELECT id FROM maps WHERE dataset_id = ? AND is_default", [dataset_id]
    )
    found = None if default is None else cluster_rows.listed(store, dataset_id, int(default[0]))
    if found is None or default is None:
        return None
    mixed = [c for c in found["clusters"] if c.get("mixed")]
    members = "FROM map_points WHERE dataset_id = ? AND map_id = ? AND list_contains(?, cluster)"
    args = [dataset_id, int(default[0]), [int(c["cluster"]) for c in mixed]]
    count = store.query_one(f"SELECT count(DISTINCT sample_id) {members}", args)
    shown = store.query(
        f"SELECT DISTINCT sample_id {members} ORDER BY 1 LIMIT {int(examples)}", args
    )
    return {
        "map_id": int(default[0]),
        "clusters": mixed,
        "of": len(found["clusters"]),
        "samples": int(count[0]) if count else 0,
        "examples": [int(r[0]) for r in shown],
    }


def clusters_missing(store: Store, dataset_id: int) -> bool:
    """Whether the dataset has a default map that was never clustered."""
    default = store.query_one(
        "SELECT id FROM maps WHERE dataset_id = ? AND is_default", [dataset_id]
    )
    return default is not None and cluster_rows.listed(store, dataset_id, int(default[0])) is None


def _has_boxes(store: Store, dataset_id: int) -> bool:
    image_labels, labels = label_rows.ground_truth_counts(store, dataset_id)
    return labels > image_labels


def missing(store: Store, dataset: dict[str, Any]) -> list[str]:
    """The signals of the report not computed yet, in the order a health job computes them:
    quality, duplicates, uniqueness, label_errors, objects, clusters (of the default map)."""
    dataset_id = dataset["id"]
    found = []
    if quality_report(store, dataset, 0)["measured"] < int(dataset["num_samples"]):
        found.append("quality")
    if analysis_rows.last_run(store, dataset_id, "duplicates") is None:
        found.append("duplicates")
    if outliers(store, dataset_id, 0) is None:
        found.append("uniqueness")
    if "scored" not in (label_summary(store, dataset_id, 0) or {}):
        found.append("label_errors")
    if _has_boxes(store, dataset_id) and object_rows.scores_summary(store, dataset_id, 0) is None:
        found.append("objects")
    if clusters_missing(store, dataset_id):
        found.append("clusters")
    return found


def report_lines(report: dict[str, Any], examples: int) -> list[str]:
    """The report as text: a line per kind of problem (its count, share, note and first
    `examples` sample ids, or what computes it), then the numbered warnings."""
    lines = [f"health of {report['dataset']} ({report['samples']:,} samples)"]
    width = max((len(row["title"]) for row in report["rows"]), default=0)
    for row in report["rows"]:
        if row["count"] is None:
            lines.append(f"  {row['title']:<{width}} not computed: {row['todo']}")
            continue
        ids = ", ".join(str(i) for i in (row.get("examples") or [])[:examples])
        mark = f" [{row['note']}]" if row.get("note") else ""
        lines.append(
            f"  {row['title']:<{width}} {row['count']:>7} ({row['share']:.1%}){mark}"
            + (f"  e.g. {ids}" if ids else "")
        )
    return lines
