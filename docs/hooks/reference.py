"""MkDocs hook: the settings and command-line references, generated from the code at every build.

A page asks for a reference with a marker line; `on_page_markdown` replaces it:

    <!-- generated: settings -->   every field of hedgegrid_assets.settings.Settings, nested models included
    <!-- generated: cli -->        the help of the `hedgegrid` parser and of each (sub)command

Registered under `hooks:` in mkdocs.yml; it runs in the project's venv, so it imports the package.
Nothing here is hand-maintained: a new setting or subcommand appears by itself, and an import
error fails the build instead of leaving a stale page.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import inspect
import json
import logging
import os
import re
import sys
import textwrap
import types
import typing
from pathlib import Path
from unittest import mock

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[2]
HELP_COLUMNS = "100"


log = logging.getLogger("mkdocs.hooks.reference")  # under "mkdocs": a warning fails --strict


def on_config(config):
    # `mkdocs` may be started from anywhere; the package is the repository's.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return config


def on_pre_build(config):
    for problem in readme_link_problems():
        log.warning(problem)


def readme_link_problems() -> list[str]:
    """README.md is not part of the site, so mkdocs does not check its links: every relative
    link in it (into docs/ and elsewhere) must name a file or folder that exists."""
    readme = ROOT / "README.md"
    problems = []
    for n, line in enumerate(readme.read_text().splitlines(), 1):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            path = target.split("#", 1)[0]
            if not path or re.match(r"[a-z][a-z0-9+.-]*:", path):
                continue  # an anchor, or http:, mailto:, ...
            if not (readme.parent / path).exists():
                problems.append(f"README.md:{n}: the link '{target}' names no file in the repository")
    return problems


def on_page_markdown(markdown, page, config, files):
    for name, render in GENERATORS.items():
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


# --- settings ---------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "&#124;").replace("\n", " ")


def _prose(text: str) -> str:
    """A description as table text: `<data_dir>` must not become an HTML tag."""
    return _cell(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _default(field) -> str:
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        try:
            return f"`<project>/{value.relative_to(ROOT)}`"
        except ValueError:
            return f"`{value}`"
    if isinstance(value, dt.time):
        return f"`{value:%H:%M}`"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _field_comments(cls) -> dict[str, str]:
    """`# comment` lines right above a field in the class body, for fields without a description."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above, i = [], node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#"):
                above.insert(0, lines[i].strip().lstrip("#").strip())
                i -= 1
            if above:
                comments[node.target.id] = " ".join(above)
    return comments


def _model_of(tp) -> tuple[type[BaseModel] | None, bool]:
    """The BaseModel a field holds (directly or as dict values), and whether it is a dict of them."""
    if typing.get_origin(tp) is dict:
        value = typing.get_args(tp)[1]
        return (value, True) if inspect.isclass(value) and issubclass(value, BaseModel) else (None, False)
    for arg in (tp, *typing.get_args(tp)):
        if inspect.isclass(arg) and issubclass(arg, BaseModel):
            return arg, False
    return None, False


def _settings_tables(model: type[BaseModel], name: str, env: str | None, depth: int) -> list[str]:
    """A table of `model`'s plain fields, then a section per nested model (recursively)."""
    rows, nested = [], []
    comments = _field_comments(model)
    for field_name, field in model.model_fields.items():
        dotted = f"{name}.{field_name}" if name else field_name
        sub, is_dict = _model_of(field.annotation)
        if sub is not None and not is_dict:
            nested.append((sub, dotted, f"{env}{field_name.upper()}__" if env else None, ""))
            continue
        env_cell = f"`{env}{field_name.upper()}`" if env else "-"
        description = field.description or comments.get(field_name, "")
        rows.append(
            f"| `{dotted}` | {env_cell} | <code>{_cell(_type_name(field.annotation))}</code> "
            f"| {_cell(_default(field))} | {_prose(description)} |"
        )
        if is_dict:
            whole = f"as a whole in `{env}{field_name.upper()}` (JSON)" if env else "in TOML only"
            note = (
                f"One entry per key, in TOML (`[{dotted}.<KEY>]`) or {whole}: environment variable "
                "names are read case-insensitively, so a key cannot be spelt in one."
            )
            nested.append((sub, f"{dotted}.<KEY>", None, note))
    out = []
    if rows:
        out += ["| setting | environment variable | type | default | description |", "|---|---|---|---|---|"]
        out += [*rows, ""]
    for sub, dotted, sub_env, note in nested:
        out += [f"{'#' * depth} `{dotted}`", ""]
        out += [text + "\n" for text in (inspect.getdoc(sub), note) if text]
        out += _settings_tables(sub, dotted, sub_env, depth + 1)
    return out


def settings_reference() -> str:
    from hedgegrid_assets.settings import Settings

    env_prefix = Settings.model_config.get("env_prefix", "")
    return "\n".join(_settings_tables(Settings, "", env_prefix, 3))


# --- command line -----------------------------------------------------------------------------


def _walk(parser: argparse.ArgumentParser, depth: int):
    yield parser, depth
    seen = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():  # aliases map to the same parser
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from _walk(sub, depth + 1)


def cli_reference() -> str:
    from hedgegrid_assets.cli import parser

    top = parser if isinstance(parser, argparse.ArgumentParser) else parser()
    out = []
    # A fixed width and no colour, so the pages do not depend on the terminal that builds them.
    with mock.patch.dict(os.environ, {"COLUMNS": HELP_COLUMNS, "NO_COLOR": "1", "PYTHON_COLORS": "0"}):
        for p, depth in _walk(top, 0):
            text = re.sub(r"\x1b\[[0-9;]*m", "", p.format_help()).rstrip()
            out += [f"{'#' * min(depth + 3, 6)} `{p.prog}`", "", "```text", text, "```", ""]
    return "\n".join(out)


GENERATORS = {"settings": settings_reference, "cli": cli_reference}


if __name__ == "__main__":  # python docs/hooks/reference.py: check README.md's links alone
    problems = readme_link_problems()
    print("\n".join(problems) or "README.md: every relative link resolves")
    sys.exit(1 if problems else 0)
