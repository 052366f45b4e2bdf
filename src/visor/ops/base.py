"""What an operation is: a frozen pydantic model of its parameters, checked against the
dataset before anything starts, keyed so that asking twice is one job, and run with a
`Context` (the store, the dataset's row, settings, caches: never the Python facade).

Every surface derives from these models: `Dataset`'s methods build one and hand it to a
runner (in this process, or a server's over HTTP), the HTTP routes take one as their body,
the CLI's options are its fields, the UI's TypeScript types its JSON schema.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from visor.config import Settings
from visor.errors import InvalidInput, VisorError
from visor.services.changes import Changes
from visor.services.jobs import JobContext, JobRunner
from visor.services.memory import PointsCache, Selections
from visor.services.search import IndexCache
from visor.sources import Source
from visor.store import Store
from visor.store import samples as sample_rows
from visor.store.samples import SampleFilter

if TYPE_CHECKING:
    from visor.ops.runner import LocalRunner

JSON = "application/json"


class JobFailed(VisorError):
    """`wait=True` on a job that failed or was cancelled: the job's own message, in every
    mode (in this process or through a server)."""

    status = 409
    code = "job_failed"

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(job.get("error") or f"{job['kind']} job {job['state']}")
        self.job = job


@dataclass
class Engine:
    """The parts of a workspace an operation may use, made once per process."""

    store: Store
    settings: Settings
    jobs: JobRunner
    changes: Changes = field(default_factory=Changes)
    indexes: IndexCache = field(default_factory=IndexCache)
    points: PointsCache = field(default_factory=PointsCache)
    serving: bool = False  # set by the HTTP server: maps' points are then encoded ahead
    selections: Selections = field(init=False)
    _sources: dict[str, Source] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.selections = Selections(self.store)

    def source(self, root: str) -> Source:
        if root not in self._sources:
            self._sources[root] = Source(root)
        return self._sources[root]


@dataclass
class Context:
    """What one operation runs with: the engine, the dataset's row (None for workspace
    operations) and the runner, for operations that start others (embed → index)."""

    engine: Engine
    row: dict[str, Any] | None
    runner: LocalRunner

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def dataset(self) -> dict[str, Any]:
        if self.row is None:
            raise InvalidInput("this operation needs a dataset")
        return self.row

    @property
    def id(self) -> int:
        return int(self.dataset["id"])

    @property
    def name(self) -> str:
        return str(self.dataset["name"])

    def source(self) -> Source:
        return self.engine.source(self.dataset["root"])

    def changed(self, what: str) -> None:
        """Record a write (for the event stream). The dataset's encoded map points are dropped
        (they carry each sample's split, class and tag, and a map of boxes its labels), unless
        the write was a saved view's, which touches none of them; after one of tags alone
        only their tags are read again."""
        if self.row and what != "views":
            self.engine.points.changed(self.row["id"], tags_only=what == "tags")
        self.engine.changes.record(self.row["name"] if self.row else None, what)

    def selection(self, token: str) -> np.ndarray:
        return self.engine.selections.get(self.id, token)

    def select(self, ids: Any) -> dict[str, Any]:
        """Keep `ids` (those of the dataset, else NotFound) under a new selection token."""
        from visor.services.samples import known

        chosen = known(self.store, self.dataset, ids)
        return {"selection": self.engine.selections.add(self.id, chosen), "count": len(chosen)}

    def filters(self, filters: SampleFilter | None, *, known: bool = True) -> SampleFilter:
        """`filters` with a selection token turned into the ids it names (and'ed with ids).
        A split, class or tag the dataset lacks is refused unless `known` is False (what a
        grid shows: a filter left on after its last tag went is an empty page, not an error)."""
        from visor.services.samples import check_known

        filters = filters or SampleFilter()
        if known:
            check_known(self.store, self.dataset, filters)
        if filters.selection is None:
            return filters
        chosen = self.selection(filters.selection)
        if filters.ids is not None:
            chosen = np.intersect1d(chosen, filters.ids)
        return filters.model_copy(update={"ids": chosen, "selection": None})

    def home(self, *parts: str) -> Path:
        return self.settings.home.joinpath(*parts)


class Op(BaseModel):
    """One operation's parameters. Subclasses set `name` (the HTTP path and CLI command),
    `job` (long work: run as a job) and `scope`, and define `run`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: ClassVar[str]
    job: ClassVar[bool] = False
    scope: ClassVar[str] = "dataset"  # or "workspace"
    media_type: ClassVar[str] = JSON  # how its result travels over HTTP
    result: ClassVar[Any] = None  # what a quick operation answers (ops/results.py), if typed

    def check(self, ctx: Context) -> Self:
        """Refusals that need the dataset (an unknown source, split or model), and defaults
        that depend on it, before any job is queued. Returns the op as it will run."""
        return self

    def key(self) -> str:
        """What makes two asks the same job (a job asked while the same runs is that job)."""
        text = self.model_dump_json()
        return hashlib.blake2s(text.encode(), digest_size=6).hexdigest()

    def job_dataset(self, dataset: str | None) -> str | None:
        """The dataset a job is about (listed with it, and in the change it records)."""
        return dataset

    def job_params(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def run(self, ctx: Context, job: JobContext | None) -> Any:
        raise NotImplementedError

    def summary(self, result: Any) -> str | None:
        """What a finished job did, in one line made from its result: the job's last message
        (`visor jobs`, the UI's job bar, `job["message"]` in Python) and the first line the
        CLI prints. None: the job's own last message stands (a quick operation: nothing
        printed)."""
        return None

    def said(self, result: Any) -> list[str]:
        """What else a person reads of a finished job's result, after its summary, a line each
        (the CLI prints them; a command's report adds what needs more reads)."""
        return []

    # How the result crosses HTTP: JSON by default; ops with binary results override both.
    def encode(self, result: Any) -> bytes | Any:
        return result

    def decode(self, body: Any) -> Any:
        return body


class Chosen(BaseModel):
    """Which samples an operation acts on: ids, a lasso's token, or filters (with a token
    among them: the lasso as the grid shows it, the samples the filters fade left out)."""

    ids: list[int] | None = Field(
        default=None, min_length=1, max_length=1_000_000, description="the samples"
    )
    selection: str | None = Field(default=None, description="instead of ids: a selection token")
    filters: SampleFilter | None = Field(
        default=None,
        description="instead: the samples these filters keep (with a selection token among "
        "them, the lasso's samples that the grid shows)",
    )

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        if sum(x is not None for x in (self.ids, self.selection, self.filters)) > 1:
            raise ValueError("give the samples one way: ids, a selection or filters")
        return self

    def chosen(self, ctx: Context) -> np.ndarray | None:
        """The samples' ids (unknown ids refused); None when none were given: all of them."""
        from visor.services.samples import known

        if self.selection is not None:
            return ctx.selection(self.selection)
        if self.filters is not None:
            return sample_rows.filtered_ids(ctx.store, ctx.id, ctx.filters(self.filters))
        return None if self.ids is None else known(ctx.store, ctx.dataset, self.ids)


OPS: dict[tuple[str, str], type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    """Add an operation to the registry that the HTTP routes and the CLI walk."""
    OPS[(cls.scope, cls.name)] = cls
    return cls


def errors_text(errors: list[Any]) -> str:
    """pydantic's errors as one line naming each field (the same text in every mode)."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        said = str(err.get("msg")).removeprefix("Value error, ")  # a check's own words
        parts.append(f"{where}: {said}" if where else said)
    return "; ".join(parts)


def make(cls: type[Op], **fields: Any) -> Op:
    """`cls(**fields)`, its validation errors as an InvalidInput naming the fields."""
    try:
        return cls(**fields)
    except ValidationError as e:
        raise InvalidInput(errors_text(e.errors())) from None


ARROW = "application/vnd.apache.arrow.stream"


def arrow_bytes(table: Any) -> bytes:
    """An Arrow table as IPC stream bytes (what crosses HTTP for table results)."""
    import io

    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def npz_bytes(**arrays: Any) -> bytes:
    """NumPy arrays as one .npz file's bytes (what crosses HTTP for vector results)."""
    import io

    sink = io.BytesIO()
    np.savez(sink, **arrays)
    return sink.getvalue()


def npz_arrays(body: bytes) -> dict[str, np.ndarray]:
    import io

    with np.load(io.BytesIO(body)) as found:
        return {name: found[name] for name in found.files}


class ArrowOp(Op):
    """An operation whose result is an Arrow table (sent as an IPC stream)."""

    media_type: ClassVar[str] = ARROW

    def encode(self, result: Any) -> bytes:
        return arrow_bytes(result)

    def decode(self, body: Any) -> Any:
        import pyarrow as pa

        return pa.ipc.open_stream(body).read_all()
