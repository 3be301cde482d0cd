"""mkdocs hooks: the reference pages that cannot go stale.

`on_page_markdown` replaces three markers, each on a line of its own, with tables generated
from the code at build time:

- `<!-- catalogue -->`: the metric catalogue, from `aimon.catalogue`;
- `<!-- config -->`: every configuration key, from the pydantic model `aimon.config.Config`
  (key path, type, default, description from the field or, failing that, the comment the
  source puts beside or above it; a section's intro is its class docstring);
- `<!-- cli -->`: every `aimon` command and option, from the typer app `aimon.cli.app`.

Any failure to import or walk them fails the build with a message saying which marker and why,
rather than publishing a page with a hole in it.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import inspect
import io
import json
import re
import tokenize
import types
import typing
from collections.abc import Callable
from typing import Any

from mkdocs.exceptions import PluginError


def _cell(text: object) -> str:
    """One markdown table cell: no newlines, pipes escaped."""
    s = " ".join(str(text).split())
    return s.replace("|", "\\|")


# -- metric catalogue ----------------------------------------------------------------------


def catalogue_markdown() -> str:
    catalogue = importlib.import_module("aimon.catalogue")
    rows = ["| metric | meaning (per window) |", "|---|---|"]
    for name, meaning in catalogue.METRICS.items():
        rows.append(f"| `{name}` | {_cell(meaning)} |")
    own = ", ".join(f"`{m}`" for m in catalogue.PROMETHEUS_OWN)
    forbidden = ", ".join(f"`{m}`" for m in sorted(catalogue.FORBIDDEN_LABELS))
    reserved = ", ".join(f"`{m}`" for m in sorted(catalogue.RESERVED_LABELS))
    return "\n".join(
        [
            f"{len(catalogue.METRICS)} metrics, in the catalogue's order.",
            "",
            *rows,
            "",
            f"Series Prometheus and the Pushgateway add themselves (rules may use them): {own}.",
            "",
            f"Labels that never become Prometheus labels (unbounded): {forbidden}. "
            f"Labels reserved for the push's grouping key: {reserved}.",
        ]
    )


# -- configuration keys --------------------------------------------------------------------


def _source_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment beside its line, or the comment lines just above it."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        return {}
    found: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        m = re.match(r"^    (\w+)\s*:", line)  # a field of the class body
        if not m:
            continue
        if number in comments and not line.lstrip().startswith("#"):
            found[m.group(1)] = comments[number]
            continue
        above = []
        k = number - 1
        while k >= 1 and lines[k - 1].lstrip().startswith("#"):
            above.append(comments.get(k, ""))
            k -= 1
        if above:
            found[m.group(1)] = " ".join(reversed(above))
    return found


def _is_model(tp: object) -> bool:
    from pydantic import BaseModel

    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


_TYPE_NAMES = {"str": "text", "int": "integer", "float": "number", "bool": "boolean", "date": "date", "Path": "path"}


def _type_name(tp: Any) -> str:
    tp = _strip_annotated(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (tuple, list, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        return "list of " + (" \\| ".join(_type_name(a) for a in inner) if inner else "any")
    if origin is dict:
        return f"map of {_type_name(args[1])}" if args else "map"
    if _is_model(tp):
        return "section"
    if tp is dt.timedelta:
        return "duration"
    if isinstance(tp, type):
        return _TYPE_NAMES.get(tp.__name__, tp.__name__)
    return str(tp).replace("typing.", "")


def _models_in(tp: Any) -> list[tuple[str, type]]:
    """The pydantic models a field holds, with how its key path continues into them."""
    tp = _strip_annotated(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_model(tp):
        return [("", tp)]
    if origin in (typing.Union, types.UnionType):
        return [m for a in args for m in _models_in(a)]
    if origin in (tuple, list, set, frozenset):
        return [("[]" + suffix, m) for a in args if a is not Ellipsis for suffix, m in _models_in(a)]
    if origin is dict and args:
        return [(".<name>" + suffix, m) for suffix, m in _models_in(args[1])]
    return []


def _duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined, to_jsonable_python

    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return ""
    else:
        value = field.default
    if _is_model(type(value)):
        return "(the section's defaults)"
    if isinstance(value, dt.timedelta):
        return f"`{_duration(value)}`"
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        text = json.dumps(to_jsonable_python(value), ensure_ascii=False)
    except Exception:
        text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"`{text}`"


def _class_doc(cls: type) -> str:
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _walk(cls: type, prefix: str, rows: list[str], note: str = "", depth: int = 0) -> None:
    if depth > 10:
        raise RuntimeError(f"config model nesting deeper than 10 at {prefix}")
    comments = _source_comments(cls)
    for name, field in cls.model_fields.items():  # type: ignore[attr-defined]
        if field.exclude:  # not a YAML key (e.g. where the file came from)
            continue
        key = field.alias or name
        path = f"{prefix}{key}"
        nested = _models_in(field.annotation)
        description = field.description or comments.get(name, "")
        if not description and len(nested) == 1:
            description = _class_doc(nested[0][1])
        if note:
            description = f"{note} {description}".strip()
        rows.append(
            f"| `{_cell(path)}` | {_type_name(field.annotation)} | {_cell(_default(field))} | {_cell(description)} |"
        )
        for suffix, model in nested:
            sub_note = ""
            if len(nested) > 1:
                kind = getattr(model.model_fields.get("type"), "annotation", None)  # type: ignore[attr-defined]
                kinds = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()
                sub_note = f"(`type: {kinds[0]}`)" if kinds else f"({model.__name__})"
            _walk(model, f"{path}{suffix}.", rows, sub_note, depth + 1)


def config_markdown() -> str:
    module = importlib.import_module("aimon.config")
    root = module.Config
    out: list[str] = []
    header = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in root.model_fields.items():
        if field.exclude:
            continue
        key = field.alias or name
        nested = _models_in(field.annotation)
        out.append(f"## `{key}`")
        out.append("")
        intro = field.description or _source_comments(root).get(name, "")
        if len(nested) == 1:
            intro = " ".join(x for x in (intro, _class_doc(nested[0][1])) if x)
        facts = [f"Type: {_type_name(field.annotation)}", f"default: {_default(field)}"]
        if intro:
            out.append(intro)
            out.append("")
        out.append("; ".join(facts) + ".")
        out.append("")
        rows: list[str] = []
        for suffix, model in nested:
            _walk(model, f"{key}{suffix}.", rows)
        if rows:
            out.extend(header + rows)
            out.append("")
    return "\n".join(out)


# -- CLI -----------------------------------------------------------------------------------


def _command_markdown(cmd: Any, path: list[str], parent_ctx: Any, out: list[str]) -> None:
    try:  # typer >= 0.20 vendors click as typer._click; earlier ones use click itself
        from typer import _click as click  # type: ignore[attr-defined]
    except ImportError:
        import click  # type: ignore[no-redef]

    ctx = click.Context(cmd, info_name=path[-1], parent=parent_ctx)
    is_group = hasattr(cmd, "list_commands")
    level = min(len(path) + 1, 6)
    out.append(f"{'#' * level} `{' '.join(path)}`")
    out.append("")
    help_text = inspect.cleandoc(cmd.help or cmd.short_help or "")
    if help_text:
        out.append(help_text.split("\f")[0].strip())
        out.append("")
    if not is_group or cmd.invoke_without_command:
        out.append("```")
        out.append(cmd.get_usage(ctx).strip())
        out.append("```")
        out.append("")
    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False) and p.name != "help"]
    if params and not is_group:
        out.append("| argument or option | type | default | help |")
        out.append("|---|---|---|---|")
        for p in params:
            if p.param_type_name == "argument":
                names = f"`{(getattr(p, 'metavar', None) or p.name or '').upper()}`"
            else:
                opts = list(p.opts) + list(p.secondary_opts)
                names = ", ".join(f"`{o}`" for o in opts)
            if p.required:
                default = "**required**"
            elif getattr(p, "is_flag", False) and not p.secondary_opts:
                default = "off" if not p.default else "on"
            elif p.default is None or callable(p.default):
                default = ""
            else:
                value = p.default
                if isinstance(value, enum.Enum):
                    value = value.value
                default = f"`{value}`" if value not in ((), [], "") else ""
            kind = _param_type(p)
            out.append(f"| {names} | {_cell(kind)} | {_cell(default)} | {_cell(getattr(p, 'help', None) or '')} |")
        out.append("")
    if is_group:
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            _command_markdown(sub, [*path, name], ctx, out)


def _param_type(p: Any) -> str:
    """A parameter's type, from click's ParamType or (newer typer) its annotation."""
    if getattr(p, "is_flag", False):
        return "flag"
    ptype = getattr(p, "type", None)
    if ptype is not None:
        choices = getattr(ptype, "choices", None)
        if choices:
            return " \\| ".join(str(getattr(c, "value", c)) for c in choices)
        return str(getattr(ptype, "name", ptype)).lower()
    descriptor = getattr(p, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:
        return ""
    annotation = _strip_annotated(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(str(m.value) for m in annotation)
    return _type_name(annotation)


def cli_markdown() -> str:
    import typer.main

    module = importlib.import_module("aimon.cli")
    app = getattr(module, "app", None)
    if app is None:
        raise RuntimeError("aimon.cli has no attribute `app` (the typer app)")
    command = typer.main.get_command(app)
    out: list[str] = []
    _command_markdown(command, ["aimon"], None, out)
    return "\n".join(out)


# -- the hook ------------------------------------------------------------------------------

MARKERS: dict[str, tuple[str, Callable[[], str]]] = {
    "<!-- catalogue -->": ("the metric catalogue from aimon.catalogue.METRICS", catalogue_markdown),
    "<!-- config -->": ("the config keys from the pydantic model aimon.config.Config", config_markdown),
    "<!-- cli -->": ("the CLI reference from the typer app aimon.cli.app", cli_markdown),
}


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that inserts text as is (no backslash or group escapes)."""
    return lambda _match: text


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for marker, (what, build) in MARKERS.items():
        # A marker counts only on a line of its own, so prose can name it in backticks.
        line = re.compile(rf"^{re.escape(marker)}[ \t]*$", re.MULTILINE)
        if not line.search(markdown):
            continue
        try:
            generated = build()
        except Exception as err:  # fail the build loudly, never publish a page with a hole
            raise PluginError(
                f"docs/hooks.py: cannot generate {what} for {page.file.src_path}: "
                f"{type(err).__name__}: {err}. Is aimon installed in this environment "
                "(make install-test) and does the module still exist under that name?"
            ) from err
        markdown = line.sub(_literal(generated), markdown)
    return markdown
