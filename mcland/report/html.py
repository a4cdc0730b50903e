"""Minimal HTML building blocks for the report: escaped text, tables, figures, the page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 1em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; margin: .3em 0; }
h2 { border-bottom: 1px solid #bbb; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 7px; text-align: right; }
th { background: #f0f0f0; }
td.l, th.l { text-align: left; }
tr.flag td { background: #fde2e2; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 12px; }
img { max-width: 100%; border: 1px solid #ddd; margin: .5em 0; }
.note { background: #fff7d6; border-left: 4px solid #e0b000; padding: .5em .8em; }
.scroll { max-height: 28em; overflow-y: auto; display: inline-block; }
nav ol { list-style: none; padding: 0; margin: .4em 0 1em; display: flex; flex-wrap: wrap;
         gap: .2em 1.2em; font-size: 14px; }
.lead { font-size: 17px; }
.big { font-size: 19px; font-weight: 600; margin: .4em 0; }
details { margin: .8em 0; }
summary { cursor: pointer; }
"""


def esc(text: object) -> str:
    """HTML-escaped ``str(text)``."""
    return html.escape(str(text))


def p(text: str) -> str:
    """A paragraph of (escaped) text."""
    return f"<p>{esc(text)}</p>"


def note(text: str) -> str:
    """A highlighted paragraph."""
    return f'<p class="note">{esc(text)}</p>'


def pre(text: str) -> str:
    """Preformatted text."""
    return f"<pre>{esc(text)}</pre>"


def details(summary: str, content: str) -> str:
    """A collapsed block: ``summary`` (escaped text) shown, ``content`` (HTML) on a click."""
    return f"<details><summary>{esc(summary)}</summary>{content}</details>"


def link(anchor: str, text: str) -> str:
    """A link to the element ``id=anchor`` of the page."""
    return f'<a href="#{esc(anchor)}">{esc(text)}</a>'


def figure(src: str, alt: str) -> str:
    """An image beside the HTML file."""
    return f'<img src="{esc(src)}" alt="{esc(alt)}">'


def table(
    df: pd.DataFrame,
    *,
    index: bool = False,
    flag: Sequence[bool] | None = None,
    max_rows: int | None = None,
    floatfmt: str = "{:.4g}",
    scroll: bool = True,
    total: int | None = None,
) -> str:
    """A table; rows where ``flag`` (one bool per row of ``df``) is true are highlighted.

    Text columns are left-aligned.  With ``scroll`` (the default) a long table scrolls
    inside a box of limited height; short tables that must be read whole pass False.

    With ``max_rows``, only the first rows are shown, followed by a line saying how many
    were left out.  ``total`` is the number of rows of which ``df`` holds the first ones
    (default ``len(df)``): the line counts the rows left out of that total.
    """
    shown = df if max_rows is None else df.head(max_rows)
    if index:
        shown = shown.reset_index()
    cols = list(shown.columns)
    left = {c for c in cols if not pd.api.types.is_numeric_dtype(shown[c])}

    def cell(v: object, c: str, tag: str = "td") -> str:
        """One escaped cell; floats formatted with ``floatfmt``."""
        if isinstance(v, float):
            v = floatfmt.format(v)
        cls = ' class="l"' if c in left else ""
        return f"<{tag}{cls}>{esc(v)}</{tag}>"

    head = "".join(cell(c, c, "th") for c in cols)
    rows = []
    flags = None if flag is None else list(flag)[: len(shown)]
    for i, row in enumerate(shown.itertuples(index=False)):
        cls = ' class="flag"' if flags is not None and bool(flags[i]) else ""
        rows.append(
            f"<tr{cls}>" + "".join(cell(v, c) for v, c in zip(row, cols, strict=True)) + "</tr>"
        )
    out = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if scroll:
        out = f'<div class="scroll">{out}</div>'
    n = len(df) if total is None else total
    if max_rows is not None and n > max_rows:
        out += p(f"… {n - max_rows} more rows not shown here.")
    return out


@dataclass
class Section:
    """One titled section of the report."""

    anchor: str
    title: str
    parts: list[str] = field(default_factory=list)

    def add(self, *fragments: str) -> None:
        """Append HTML fragments."""
        self.parts.extend(fragments)

    def render(self) -> str:
        """The section as HTML (heading and fragments)."""
        return f'<section id="{esc(self.anchor)}"><h2>{esc(self.title)}</h2>{"".join(self.parts)}</section>'


def page(title: str, intro: str, sections: list[Section]) -> str:
    """The whole HTML document: title, a one-line table of contents, ``intro`` (HTML) and
    the sections in the order given."""
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(s.render() for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><nav><ol>{toc}</ol></nav>{intro}{body}</body></html>\n"
    )
