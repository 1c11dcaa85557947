"""Renderers of ReconcileRecords for auditors: text, json, markdown and self-contained html.

`render(records, fmt)` is pure: records in, a string out. Secret values are masked again here,
whatever the caller passes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from reconciler.changeset import ReconcileRecord


class Format(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"


def render(records: Sequence[ReconcileRecord], fmt: Format | str = Format.TEXT) -> str:
    from reconciler.reports import html, jsonfmt, markdown, text
    from reconciler.reports.records import mask_secrets

    masked = [mask_secrets(r) for r in records]
    renderers = {Format.TEXT: text.render, Format.JSON: jsonfmt.render,
                 Format.MARKDOWN: markdown.render, Format.HTML: html.render}
    return renderers[Format(fmt)](masked)


__all__ = ["Format", "render"]
