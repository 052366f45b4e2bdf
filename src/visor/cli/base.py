"""What every command shares: the app, its consoles, errors as one line, following a job's
progress, and `command`: a command made from an operation (see `visor.cli.options`), its
report called with a `Call`."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from visor import ops
from visor.cli.options import op_command
from visor.client import open_workspace
from visor.errors import VisorError
from visor.services.jobs import FINAL_STATES
from visor.workspace import Workspaces

app = typer.Typer(
    help="Visor: see and fix image datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# No console markup: messages carry file names, class names and reasons such as
# "bbox must be [x, y, width, height]" that markup would eat; styles go through Text.
console = Console(stderr=True, soft_wrap=True, markup=False)
out = Console(soft_wrap=True, markup=False)


def _styled(prefix: str, style: str, message: str) -> Text:
    return Text.assemble((prefix, style), " ", message)


F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Print VisorErrors as one line and exit 1; Ctrl-C exits 130, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VisorError as e:
            console.print(_styled("error:", "red", e.message))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def follow(workspace: Workspaces, job: dict[str, Any]) -> dict[str, Any]:
    """Show a job's progress until it ends; Ctrl-C cancels it. Exits 1 if the job failed."""
    columns = [
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}", markup=False),
        TimeRemainingColumn(),
    ]
    # Transient: once the job ends its command prints what it did, and a bar left behind
    # would only repeat it (or show a last phase that had no count, as 0/?). Not drawn when
    # stderr is no terminal (a log, a pipe): there it would only be its last frame.
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        task = progress.add_task(job["kind"], total=None, rate="")
        try:
            while job["state"] not in FINAL_STATES:
                time.sleep(0.1)
                job = workspace.jobs.get(job["id"])
                rate = f"{job['rate']:.1f}/s" if job.get("rate") else ""
                progress.update(
                    task,
                    description=job["message"] or job["kind"],
                    completed=job["done"],
                    total=job["total"],
                    rate=rate,
                )
        except KeyboardInterrupt:
            workspace.jobs.cancel(job["id"])
            job = workspace.jobs.wait(job["id"])
    if job["state"] == "failed":
        raise VisorError(job["error"] or "job failed")
    if job["state"] == "cancelled":
        console.print("cancelled; finished work was kept")
        raise typer.Exit(130)
    return job


_warned: set[str] = set()  # this command's warnings so far


@app.callback()
def _command() -> None:
    """Visor: see and fix image datasets."""
    _warned.clear()  # a new command (in one process: a notebook, a test runner) warns anew


def _warning(text: str | None) -> None:
    """A warning (a result's: vectors from random weights), said plainly, once a command
    (`visor demo` runs four)."""
    if text and text not in _warned:
        _warned.add(text)
        out.print(_styled("warning:", "bold yellow", text))


def _table(headings: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "") -> None:
    """Print `rows` under `headings`, each cell as text; `empty` instead when there are none."""
    rows = list(rows)
    if not rows and empty:
        out.print(empty)
        return
    table = Table(*headings)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    out.print(table)


def _problems(title: str, count: int, lines: list[str], where: str) -> None:
    """`count` problems under `title`: the first 20 of `lines`, then where to see the rest."""
    if not count:
        return
    console.print(Text(f"{title}:", style="yellow"))
    for line in lines[:20]:
        console.print(f"  {line}")
    if count > 20:
        console.print(f"  ... and {count - 20} more ({where})")


def _report(result: dict[str, Any]) -> None:
    """The records an ingest or an import skipped, and why."""
    count, skipped = result.get("skipped_count") or 0, result.get("skipped") or []
    lines = [f"{item['path']}: {item['reason']}" for item in skipped]
    _problems(f"skipped {count} record(s)", count, lines, "visor info NAME --skipped")


@dataclass
class Call:
    """One command as called: the workspace, its operation, the dataset and the fields given."""

    ws: Workspaces
    op: type[ops.Op]
    name: str | None
    fields: dict[str, Any]
    done: dict[str, Any] | None = None  # its operation's summary and result, had already

    @functools.cached_property
    def dataset(self) -> Any:  # found once: a report's loop over samples asks it each time
        return self.ws.dataset(str(self.name))

    def run(self, op: type[ops.Op] | None = None, **more: Any) -> Any:
        """Run the command's operation (or `op`, given the fields of the command's that it
        has) with `more`. A job's progress is shown, then its summary (the job's last
        message), what else its operation says of the result, and its warning; the result
        either way."""
        if self.done is not None and op is None:
            made = self.op.model_construct(**self.fields)
            summary, result = self.done["summary"], self.done["result"]
        else:
            given = {k: v for k, v in self.fields.items() if op is None or k in op.model_fields}
            made = ops.make(op or self.op, **(given | more))
            if not made.job:
                result = self.ws.runner.run(made, self.name)
                if (summary := made.summary(result)) is not None:
                    out.print(summary, *made.said(result), sep="\n")
                return result
            job = follow(self.ws, self.ws.runner.run(made, self.name))
            summary, result = job["message"], job["result"]
        out.print(summary, *made.said(result), sep="\n")
        _warning(result.get("warning") if isinstance(result, dict) else None)
        return result


@contextlib.contextmanager
def _called(cls: type[ops.Op], name: str | None, fields: dict[str, Any]) -> Iterator[Call]:
    with open_workspace() as ws:  # through a running visor serve for this home, if any
        yield Call(ws, cls, name, fields)


command = functools.partial(op_command, app, wrap=friendly, opened=_called)


def ran(call: Call) -> None:
    """The report of a command whose operation's summary says it all."""
    call.run()
