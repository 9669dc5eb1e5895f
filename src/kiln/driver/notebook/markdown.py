"""Markdown cells as HTML: CommonMark through markdown-it (already installed with rich), with
raw HTML escaped and only safe link schemes, so a notebook cannot inject script into a page."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["render_markdown"]


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # html=False escapes raw HTML; markdown-it refuses javascript:/vbscript:/data: links itself.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """The HTML of a markdown text."""
    return str(_parser().render(text))
