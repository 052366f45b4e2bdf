"""The CLI's options made from an operation's fields: name, type, default and help come from
the operation's model, so a field added there is an option here. What a command adds by
hand is its printed report and the few options of its own (how much to list, say)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import typer
from pydantic.fields import FieldInfo

from visor.ops.base import Op
from visor.store.samples import SampleFilter

Report = Callable[..., Any]
REPORTS: dict[type[Op], Report] = {}  # each operation's report, as its command prints it
# A field of filters becomes an option per filter (--split, --class, --quality, ...); ids and
# selection tokens are for the API (a lasso), not typed by hand.
NOT_TYPED = ("ids", "selection")


def _plain(annotation: Any) -> tuple[Any, bool]:
    """The type an option takes (None stripped; Literal as str), and whether it was optional."""
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else str
    if get_origin(annotation) is Literal:
        annotation = type(get_args(annotation)[0])
    return annotation, optional


def _argument(name: str, field: FieldInfo) -> inspect.Parameter:
    kind, _ = _plain(field.annotation)
    metavar = name.upper()
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[kind, typer.Argument(metavar=metavar, help=field.description)],
    )


def _option(name: str, field: FieldInfo, flag: str | None) -> inspect.Parameter:
    kind, optional = _plain(field.annotation)
    if get_origin(kind) is list:
        kind, optional = list[get_args(kind)[0]], True  # type: ignore[misc]
    decls = [flag] if flag else [f"--{(field.alias or name).replace('_', '-')}"]
    if kind is bool and not flag:
        decls = [f"{decls[0]}/--no-{decls[0][2:]}"]
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if isinstance(default, list) and not default:
        default = None
    required = field.is_required()
    option = typer.Option(*decls, help=field.description or "", show_default=not required)
    annotation: Any = Annotated[(kind | None) if optional else kind, option]
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=annotation,
        default=inspect.Parameter.empty if required else default,
    )


def _filter_options(field: str) -> dict[str, inspect.Parameter]:
    """The options of a filters field, by parameter name (`field`__`filter`)."""
    found = {}
    for name, info in SampleFilter.model_fields.items():
        if name not in NOT_TYPED:
            flag = f"--{(info.alias or name).replace('_', '-')}"
            if _plain(info.annotation)[0] is bool:
                flag = f"{flag}/--no-{flag[2:]}"
            found[f"{field}__{name}"] = _option(f"{field}__{name}", info, flag)
    return found


def _is_filters(field: FieldInfo) -> bool:
    return _plain(field.annotation)[0] is SampleFilter


Opener = Callable[[type[Op], str | None, dict[str, Any]], contextlib.AbstractContextManager[Any]]


def op_command(
    app: typer.Typer,
    cls: type[Op],
    command: str | None = None,
    *,
    skip: tuple[str, ...] = (),
    positional: tuple[str, ...] = (),
    flags: dict[str, str] | None = None,
    argument: str | None = "NAME",
    wrap: Callable[[Report], Report],
    opened: Opener,
) -> Callable[[Report], Report]:
    """Register `report` as the command for `cls`: `report(call, **own)` gets what `opened`
    makes of the dataset's name (the command's first argument unless `argument` is None) and
    the fields the user gave (the op's, less `skip`), and its own options, declared on it as
    usual. `positional`: fields given as arguments, after the name. `flags` names an option
    other than --field-name (e.g. "-k")."""
    flags = flags or {}

    def decorate(report: Report) -> Report:
        hints = get_type_hints(report, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in list(inspect.signature(report).parameters.values())[1:]
        ]
        fields = {n: f for n, f in cls.model_fields.items() if n not in skip}
        params = [
            inspect.Parameter(
                "name",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=Annotated[str, typer.Argument(metavar=argument, help="the dataset")],
            )
        ] if argument else []  # fmt: skip
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p.kind
                   is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is p.empty]  # fmt: skip
        params += [_argument(n, fields[n]) for n in positional]
        filters = {n: _filter_options(n) for n, f in fields.items() if _is_filters(f)}
        params += [
            p
            for n, f in fields.items()
            if n not in positional
            for p in (filters[n].values() if n in filters else [_option(n, f, flags.get(n))])
        ]
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own
                   if p.default is not p.empty]  # fmt: skip

        @functools.wraps(report)
        def run(**kwargs: Any) -> None:
            given = {n: kwargs.pop(n) for n in fields if n not in filters}
            for n, options in filters.items():  # a filters field: the filters given, if any
                chosen = {k.split("__")[1]: kwargs.pop(k) for k in options}
                if any(v is not None for v in chosen.values()):
                    given[n] = SampleFilter(**{k: v for k, v in chosen.items() if v is not None})
            given = {n: v for n, v in given.items() if v is not None}
            with opened(cls, kwargs.pop("name", None), given) as call:
                then = report(call, **kwargs)
            if then is not None:  # what to do once the workspace is closed (visor demo: serve)
                then()

        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__doc__ = report.__doc__ or cls.__doc__
        app.command(command or cls.name)(wrap(run))
        REPORTS.setdefault(cls, report)
        return report

    return decorate
