"""Label edits (`ds.edits`): change a label's class, delete or add a label, change an image's
class, exclude a sample; in bulk (every box of class A among some samples -> B) or from the
suggestions of likely label errors. Each request is one batch in the edit log, with every
label before and after, so it can be undone, redone, or reverted later by its number.

The labels table holds the labels as they are now, so every reader (grid, evaluation, label
errors, export) sees the edits without knowing of them; the log holds what they were: the
original of any label is the `before` of its first edit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import numpy as np

from visor.errors import Conflict, InvalidInput, NotFound
from visor.formats.records import box_problem
from visor.store import Store
from visor.store import edits as edit_rows

EXCLUDED = "excluded"  # the sample flag an exclusion sets; exports leave these samples out
_BAD_CLASS = re.compile(r"[\x00-\x1f]")


def check_class(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or _BAD_CLASS.search(name):
        raise InvalidInput(f"class {name!r}: give a non-empty name without control characters")
    return name.strip()


class Edits:
    """The edit log of one dataset, and the edits themselves."""

    def __init__(self, store: Store, dataset: dict[str, Any], changed: Callable[[], None]):
        self._store = store
        self._id = int(dataset["id"])
        self._name = dataset["name"]
        self._changed = changed

    # -- edits ----------------------------------------------------------------------------

    def relabel(
        self,
        from_class: str,
        to_class: str,
        sample_ids: Sequence[int] | np.ndarray | None = None,
        *,
        who: str | None = None,
    ) -> dict[str, Any]:
        """Every ground-truth label of class `from_class` (among `sample_ids`, else all) gets
        `to_class`, as one batch."""
        among = None if sample_ids is None else np.asarray(sample_ids)
        found = edit_rows.of_class(self._store, self._id, from_class, among)
        if not found:
            raise InvalidInput(f"no ground-truth label of class {from_class!r} to change")
        changes = [{"action": "set_class", "label_id": i, "class": to_class} for i in found]
        return self.apply(changes, who=who)

    def accept_suggestions(self, label_ids: Sequence[int], *, who: str | None = None) -> dict:
        """Give each label the class its neighbours suggest (from label-errors)."""
        rows = self._store.query(
            "SELECT label_id, suggested FROM label_quality WHERE dataset_id = ? "
            "AND list_contains(?, label_id)",
            [self._id, [int(i) for i in label_ids]],
        )
        suggested = {int(i): s for i, s in rows}
        missing = [i for i in label_ids if int(i) not in suggested]
        if missing:
            raise NotFound(f"no suggested class for label(s) {missing[:5]} (run label-errors)")
        changes = [
            {"action": "set_class", "label_id": int(i), "class": suggested[int(i)]}
            for i in label_ids
        ]
        return self.apply(changes, who=who)

    def tag(self, tagged: dict[str, np.ndarray], *, who: str | None = None) -> dict[str, Any]:
        """Add each tag to its samples (those without it yet) as one batch: undone, the tags
        come off those samples again."""
        with self._store.transaction() as cur:
            batch = edit_rows.next_batch(cur, self._id)
            rows: list[dict[str, Any]] = []
            for tag, ids in tagged.items():
                fresh = edit_rows.without_tag(cur, self._id, ids, tag)
                edit_rows.set_tag(cur, self._id, fresh, tag, True)
                rows += [{"action": "tag", "sample_id": int(i), "before": {"tag": tag, "on": False},
                          "after": {"tag": tag, "on": True}} for i in fresh]  # fmt: skip
            if rows:
                edit_rows.log(cur, self._id, batch, rows, who)
        self._changed()
        counts = {tag: sum(1 for r in rows if r["after"]["tag"] == tag) for tag in tagged}
        return {"batch": batch if rows else None, "changes": len(rows), "tagged": counts}

    def apply(self, changes: list[dict[str, Any]], *, who: str | None = None) -> dict[str, Any]:
        """Make `changes` (each `{"action": ..., ...}` as the methods above take them) as one
        batch: all of them or, if one can't be made, none."""
        if not changes:
            raise InvalidInput("no edit given")
        asked = [int(c["label_id"]) for c in changes
                 if c.get("action") in ("set_class", "delete") and "label_id" in c]  # fmt: skip
        with self._store.transaction() as cur:
            batch = edit_rows.next_batch(cur, self._id)
            # The labels are read at once and written at once: a batch of 100K is a few
            # statements, not two a label.
            labels = _Labels(cur, self._id, edit_rows.label_rows(cur, self._id, asked))
            rows = [row for change in changes for row in self._change(cur, change, labels)]
            labels.write()
            edit_rows.log(cur, self._id, batch, rows, who)
            edit_rows.refresh_samples(cur, self._id, sorted({r["sample_id"] for r in rows}))
        self._changed()
        return {
            "batch": batch,
            "changes": len(rows),
            "samples": sorted({r["sample_id"] for r in rows}),
        }

    def _change(
        self, cur: duckdb.DuckDBPyConnection, change: dict[str, Any], labels: _Labels
    ) -> list[dict]:
        action = change.get("action")
        if action in ("set_class", "delete"):
            label_id = int(change["label_id"])
            before = labels.get(label_id) or self._label(cur, label_id)
            after = (
                None if action == "delete" else {**before, "class": check_class(change["class"])}
            )
            labels.set(label_id, after)
            return [{"action": action, "label_id": label_id, "sample_id": before["sample_id"],
                     "before": before, "after": after}]  # fmt: skip
        if action == "add":
            sample_id = self._sample(cur, int(change["sample_id"]))
            box = change.get("box")
            x = y = w = h = None
            if box is not None:
                if len(box) != 4:
                    raise InvalidInput(f"box {box!r}: give x, y, width, height")
                x, y, w, h = (float(v) for v in box)
                if problem := box_problem(x, y, w, h):
                    raise InvalidInput(f"box {list(box)}: {problem}")
            label_id = edit_rows.new_label_id(cur)
            after = {"id": label_id, "sample_id": sample_id, "kind": "gt", "source": "edit",
                     "class": check_class(change["class"]), "x": x, "y": y, "w": w, "h": h,
                     "score": None, "iscrowd": False, "flags": []}  # fmt: skip
            labels.set(label_id, after)
            return [{"action": "add", "label_id": label_id, "sample_id": sample_id,
                     "before": None, "after": after}]  # fmt: skip
        if action == "set_image_class":
            sample_id = self._sample(cur, int(change["sample_id"]))
            cls = check_class(change["class"])
            labels.write()  # the sample's labels as this batch has left them so far
            present = cur.execute(
                "SELECT id FROM labels WHERE dataset_id = ? AND sample_id = ? AND kind = 'gt' "
                "AND x IS NULL ORDER BY id",
                [self._id, sample_id],
            ).fetchall()
            rows: list[dict] = []
            if present:
                first, *rest = (int(r[0]) for r in present)
                change = {"action": "set_class", "label_id": first, "class": cls}
                rows += self._change(cur, change, labels)
                for other in rest:
                    rows += self._change(cur, {"action": "delete", "label_id": other}, labels)
            else:
                change = {"action": "add", "sample_id": sample_id, "class": cls}
                rows += self._change(cur, change, labels)
            return rows
        if action in ("exclude", "include"):
            sample_id = self._sample(cur, int(change["sample_id"]))
            flags = cur.execute(
                "SELECT coalesce(flags, []) FROM samples WHERE dataset_id = ? AND id = ?",
                [self._id, sample_id],
            ).fetchall()[0][0]
            was = EXCLUDED in flags
            edit_rows.set_flag(cur, self._id, sample_id, EXCLUDED, action == "exclude")
            return [{"action": action, "sample_id": sample_id, "before": {"excluded": was},
                     "after": {"excluded": action == "exclude"}}]  # fmt: skip
        raise InvalidInput(
            f"edit action {action!r}: use set_class, delete, add, set_image_class, exclude or "
            "include"
        )

    def _label(self, cur: duckdb.DuckDBPyConnection, label_id: int) -> dict[str, Any]:
        found = edit_rows.label_row(cur, self._id, label_id)
        if found is not None:
            return found
        gone = edit_rows.deleted_by(self._store, self._id, label_id)
        if gone is not None:
            raise Conflict(f"label {label_id} was deleted by edit {gone} (undo or revert it first)")
        raise NotFound(f"label {label_id} not found in dataset {self._name!r}")

    def _sample(self, cur: duckdb.DuckDBPyConnection, sample_id: int) -> int:
        found = cur.execute(
            "SELECT count(*) FROM samples WHERE dataset_id = ? AND id = ?", [self._id, sample_id]
        ).fetchall()
        if not found[0][0]:
            raise NotFound(f"sample {sample_id} not found in dataset {self._name!r}")
        return sample_id

    # -- the log --------------------------------------------------------------------------

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The batches, newest first (`state`: done, undone, or dropped by a later edit)."""
        return edit_rows.history(self._store, self._id, limit)

    def batch(self, batch: int) -> list[dict[str, Any]]:
        """One batch's changes, each with the label before and after."""
        rows = edit_rows.batch_rows(self._store, self._id, batch)
        if not rows:
            raise NotFound(f"edit {batch} not found in dataset {self._name!r}")
        return rows

    def undo(self) -> dict[str, Any]:
        """Undo the newest batch still in force."""
        batch = edit_rows.last_batch(self._store, self._id, "done")
        if batch is None:
            raise Conflict(f"nothing to undo in dataset {self._name!r}")
        return self._run(batch, backwards=True, state="undone")

    def redo(self) -> dict[str, Any]:
        """Make the most recently undone batch again (until a new edit is made)."""
        batch = edit_rows.last_batch(self._store, self._id, "undone", newest=False)
        if batch is None:
            raise Conflict(f"nothing to redo in dataset {self._name!r}")
        return self._run(batch, backwards=False, state="done")

    def revert(self, batch: int) -> dict[str, Any]:
        """Undo batch `batch`, whatever came after it, unless a later edit in force changed
        one of its labels (undo or revert that one first)."""
        rows = self.batch(batch)
        if rows[0]["state"] != "done":
            raise Conflict(f"edit {batch} is not in force ({rows[0]['state']})")
        labels = [int(r["label_id"]) for r in rows if r["label_id"] is not None]
        later = edit_rows.later_touching(self._store, self._id, batch, labels)
        if later is not None:
            raise Conflict(
                f"edit {later} changed the same labels after edit {batch}: revert it first"
            )
        return self._run(batch, backwards=True, state="undone")

    def _run(self, batch: int, *, backwards: bool, state: str) -> dict[str, Any]:
        rows = edit_rows.batch_rows(self._store, self._id, batch)
        with self._store.transaction() as cur:
            tags: dict[tuple[str, bool], list[int]] = {}  # a tag on many samples: one update
            labels: dict[int, dict | None] = {}  # each label as the last row leaves it
            for row in reversed(rows) if backwards else rows:
                target = row["before"] if backwards else row["after"]
                if row["action"] == "tag":
                    tags.setdefault((target["tag"], target["on"]), []).append(row["sample_id"])
                elif row["action"] in ("exclude", "include"):
                    edit_rows.set_flag(cur, self._id, row["sample_id"], EXCLUDED,
                                       bool(target["excluded"]))  # fmt: skip
                else:
                    labels[int(row["label_id"])] = target
            edit_rows.set_labels(cur, self._id, labels)
            for (tag, on), ids in tags.items():
                edit_rows.set_tag(cur, self._id, np.array(ids), tag, on)
            edit_rows.set_state(cur, self._id, batch, state)
            edit_rows.refresh_samples(cur, self._id, sorted({r["sample_id"] for r in rows}))
        self._changed()
        return {"batch": batch, "state": state, "changes": len(rows)}


class _Labels:
    """A batch's labels: read once before it, kept as its changes leave them, written once."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, dataset_id: int, read: dict) -> None:
        self._cur, self._id, self._now = cur, dataset_id, read
        self._changed: dict[int, dict[str, Any] | None] = {}

    def get(self, label_id: int) -> dict[str, Any] | None:
        """The label as the batch has left it so far (None: not read yet)."""
        if label_id in self._changed and self._changed[label_id] is None:
            raise NotFound(f"label {label_id} is deleted by this same edit")
        return self._now.get(label_id)

    def set(self, label_id: int, row: dict[str, Any] | None) -> None:
        self._changed[label_id] = row
        if row is None:
            self._now.pop(label_id, None)
        else:
            self._now[label_id] = row

    def write(self) -> None:
        edit_rows.set_labels(self._cur, self._id, self._changed)
        self._changed = {}
