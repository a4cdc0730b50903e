"""Regenerate the parts of the documentation that are facts of the code.

    python docs/generate.py           # rewrite the generated sections in place
    python docs/generate.py --check   # exit 1 with a diff when a committed page is stale

Each generated section sits between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->`` in its page; the prose around it is hand-written and left alone.
The sources are the code's own:

* ``docs/output-schema.md`` (``schema``): :data:`mcland.points.records.SCHEMA`, whose fields carry
  their descriptions as metadata;
* ``docs/configuration.md`` (``configuration``): the pydantic models of :mod:`mcland.core.config`
  (``Field(description=...)``, defaults, bounds), defaults of tolerances from
  :mod:`mcland.core.tolerances`;
* ``docs/cli.md`` (``cli``): the ``--help`` text of the click commands of :mod:`mcland.cli`;
* ``docs/dynamics.md`` (``dynamics_escape``, ``dynamics_small_init``): the record schemas of
  :func:`mcland.flow.schema.record_schema`;
* ``docs/classify.md`` (``classify``): the columns a classify record adds to the sampler's,
  :data:`mcland.classification.schema.EXTRA_COLUMNS` (in :func:`record_schema`'s order).

``tests/test_docs.py`` runs :func:`check`, so a change to any of these sources fails the
tests until the pages are regenerated.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcland.points.records import SCHEMA, description

DOCS = Path(__file__).resolve().parent
WIDTH = 88  # of the --help text, fixed so the output does not depend on the terminal


# ---------------------------------------------------------------------- output schema


def _arrow_type(t: Any) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return f"dictionary<{_arrow_type(t.value_type)}>"
    if pa.types.is_list(t):
        return f"list<{_arrow_type(t.value_type)}>"
    return {"bool": "bool", "double": "float64", "string": "string"}.get(str(t), str(t))


def schema_section() -> str:

    rows = ["| column | Arrow type | nullable | meaning (paper notation) |", "|---|---|---|---|"]
    for fl in SCHEMA:
        desc = description(fl.name).replace("|", "\\|")
        rows.append(
            f"| `{fl.name}` | {_arrow_type(fl.type)} | {'yes' if fl.nullable else 'no'} | {desc} |"
        )
    return "\n".join(rows)


def _schema_table(schema: Any) -> str:
    """Markdown table of an Arrow schema whose fields carry a ``description``; a
    list-of-struct column's fields follow as ``column.field`` rows."""
    import pyarrow as pa

    rows = ["| column | Arrow type | nullable | meaning (paper notation) |", "|---|---|---|---|"]

    def add(name: str, fl: Any) -> None:
        t = fl.type
        inner = t.value_type if pa.types.is_list(t) else t
        shown = "list<struct>" if pa.types.is_struct(inner) else _arrow_type(t)
        desc = fl.metadata[b"description"].decode("utf-8").replace("|", "\\|")
        rows.append(f"| `{name}` | {shown} | {'yes' if fl.nullable else 'no'} | {desc} |")
        if pa.types.is_struct(inner):
            for sub in inner:
                add(f"{name}.{sub.name}", sub)

    for fl in schema:
        add(fl.name, fl)
    return "\n".join(rows)


def dynamics_section(experiment: str) -> str:
    from mcland.flow.schema import record_schema

    return _schema_table(record_schema(experiment))


def classify_section() -> str:
    import pyarrow as pa

    from mcland.classification.schema import EXTRA_COLUMNS, record_schema

    names = {name for name, _, _ in EXTRA_COLUMNS}
    return _schema_table(pa.schema([fl for fl in record_schema() if fl.name in names]))


# ---------------------------------------------------------------------- configuration


def _num(v: Any) -> str:
    """A number as written in TOML, compactly (1e-8, 1e12, 2^62)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        for k in range(31, 64):
            if v == 2**k:
                return f"2^{k}"
            if v == 2**k - 1:
                return f"2^{k} − 1"
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e6:
            return f"{v:.1f}"
        return re.sub(
            r"e([+-])0*(\d)", lambda m: "e" + m.group(1).lstrip("+") + m.group(2), f"{v:g}"
        )
    return str(v)


def _value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return f'`"{v}"`'
    if isinstance(v, list | tuple):
        return "`[" + ", ".join(_num(x) for x in v) + "]`"
    return f"`{_num(v)}`"


def _bounds(s: dict[str, Any]) -> str:
    lo = (
        f"[{_num(s['minimum'])}"
        if "minimum" in s
        else f"({_num(s['exclusiveMinimum'])}"
        if "exclusiveMinimum" in s
        else ""
    )
    hi = (
        f"{_num(s['maximum'])}]"
        if "maximum" in s
        else f"{_num(s['exclusiveMaximum'])})"
        if "exclusiveMaximum" in s
        else ""
    )
    if lo and hi:
        return f"{lo}, {hi}"
    if lo:
        return f"≥ {lo[1:]}" if lo[0] == "[" else f"> {lo[1:]}"
    if hi:
        return f"≤ {hi[:-1]}" if hi[-1] == "]" else f"< {hi[:-1]}"
    return ""


_JSON_TYPES = {"integer": "integer", "number": "float", "boolean": "boolean", "string": "string"}


def _type_and_bounds(s: dict[str, Any]) -> tuple[str, str]:
    """Type and bounds of a property of the JSON schema of a configuration model."""
    if "anyOf" in s:  # X | None
        inner = [x for x in s["anyOf"] if x.get("type") != "null"]
        t, b = _type_and_bounds(inner[0])
        return f"{t} (optional)", b
    if "enum" in s:
        return "string", "one of " + ", ".join(f'`"{x}"`' for x in s["enum"])
    if "const" in s:
        return "string", f'`"{s["const"]}"`'
    if s.get("type") == "array":
        if "prefixItems" in s:
            items = s["prefixItems"]
            t, b = _type_and_bounds(items[0])
            same = all(_type_and_bounds(x) == (t, b) for x in items)
            kind = "range" if len(items) == 2 else f"{len(items)}-tuple"
            return (
                f"{kind} `[min, max]` of {t}" if kind == "range" else f"{kind} of {t}",
                f"each {b}" if same and b else b,
            )
        t, b = _type_and_bounds(s.get("items", {}))
        size = _bounds(
            {k2: s[k1] for k1, k2 in (("minItems", "minimum"), ("maxItems", "maximum")) if k1 in s}
        )
        parts = [f"each {b}"] if b else []
        if size:
            parts.append(f"length {size}")
        return f"list of {t}", "; ".join(parts)
    return _JSON_TYPES.get(s.get("type", ""), s.get("type", "?")), _bounds(s)


def _rst_to_md(text: str) -> str:
    return re.sub(r"``([^`]+)``", r"`\1`", " ".join(text.split()))


def configuration_section() -> str:
    from pydantic import BaseModel

    from mcland.core.config import Config

    out: list[str] = []

    def table(model: type[BaseModel], prefix: str) -> None:
        schema = model.model_json_schema()
        props = schema["properties"]
        head = f"### `[{prefix}]`" if prefix else "### Top level"
        out.extend([head, "", _rst_to_md(model.__doc__ or ""), ""])
        out.append("| key | type | default | bounds | description |")
        out.append("|---|---|---|---|---|")
        subs = []
        for name, fld in model.model_fields.items():
            ann = fld.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                subs.append((name, ann))
                out.append(
                    f"| `{name}` | table | | | {fld.description} (section `[{name}]`, below) |"
                )
                continue
            key = f"{prefix}.{name}" if prefix else name
            typ, bounds = _type_and_bounds(props[name])
            desc = (fld.description or "").replace("|", "\\|")
            out.append(f"| `{key}` | {typ} | {_value(fld.default)} | {bounds} | {desc} |")
        out.append("")
        for name, sub in subs:
            table(sub, f"{prefix}.{name}" if prefix else name)

    table(Config, "")
    return "\n".join(out).rstrip()


# ---------------------------------------------------------------------- command line


def cli_section() -> str:
    import click

    from mcland.cli import cli

    root = click.Context(
        cli,
        info_name="mcland",
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **cli.context_settings,  # -h as well as --help
    )
    out = ["```text", "$ mcland --help", cli.get_help(root), "```"]
    for name in cli.list_commands(root):  # in the order `mcland --help` lists them
        cmd = cli.commands[name]
        ctx = click.Context(
            cmd, info_name=name, parent=root, terminal_width=WIDTH, max_content_width=WIDTH
        )
        out += ["", f"### `mcland {name}`", "", "```text", cmd.get_help(ctx), "```"]
    return "\n".join(out)


# ---------------------------------------------------------------------- driver

SECTIONS: dict[str, tuple[str, Callable[[], str]]] = {
    "schema": ("output-schema.md", schema_section),
    "configuration": ("configuration.md", configuration_section),
    "cli": ("cli.md", cli_section),
    "dynamics_escape": ("dynamics.md", lambda: dynamics_section("escape")),
    "dynamics_small_init": ("dynamics.md", lambda: dynamics_section("small_init")),
    "classify": ("classify.md", classify_section),
}


def render(text: str, name: str, body: str, page: str) -> str:
    """``text`` with the generated section ``name`` replaced by ``body``."""
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if len(pat.findall(text)) != 1:
        raise SystemExit(f"docs/{page}: needs exactly one {start} … {end} section")
    note = "<!-- generated by docs/generate.py from the code; edit the source, not this table -->"
    return pat.sub(lambda _: f"{start}\n{note}\n\n{body}\n\n{end}", text)


def pages() -> dict[Path, tuple[str, str]]:
    """``{path: (committed text, generated text)}`` of every page with generated sections."""
    out: dict[Path, tuple[str, str]] = {}
    for name, (page, make) in SECTIONS.items():
        path = DOCS / page
        old = out[path][0] if path in out else path.read_text(encoding="utf-8")
        cur = out[path][1] if path in out else old
        out[path] = (old, render(cur, name, make(), page))
    return out


def check() -> str:
    """The unified diff between the committed pages and the generated ones ('' if none)."""
    diff: list[str] = []
    for path, (old, new) in pages().items():
        rel = path.relative_to(DOCS.parent)
        diff += difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"{rel} (committed)",
            f"{rel} (generated)",
        )
    return "".join(diff)


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        diff = check()
        if diff:
            sys.stdout.write(diff)
            print("\ndocs are stale: run `python docs/generate.py`", file=sys.stderr)
            return 1
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path, (old, new) in pages().items():
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {path.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
