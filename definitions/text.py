"""Bounds on what people write, shared by every boundary (CLI, worker, workflows, email).

A title is one line of at most MAX_TITLE characters; a note, reason, comment or workaround is
at most MAX_TEXT bytes. Front ends refuse longer input; intake and workflows, which must
never fail on it, shorten it (`one_line`) and keep the full text where it belongs (the
description, the history)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator

from definitions.characters import UNSAFE as _BREAKS

MAX_TITLE = 200
MAX_TEXT = 32 * 1024


def one_line(text: object, limit: int = MAX_TITLE) -> str:
    """`text` on one line (every control character a space), at most `limit` characters."""
    flat = _BREAKS.sub(" ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def title_problem(title: str, option: str = "--title") -> str | None:
    """Why `title` is not a valid title, or None."""
    if not title.strip():
        return f"{option} must not be empty"
    if _BREAKS.search(title):
        return f"{option} must be one line, without control characters"
    if len(title.strip()) > MAX_TITLE:
        return f"{option} has {len(title.strip()):,} characters; at most {MAX_TITLE}"
    return None


def text_problem(name: str, text: str) -> str | None:
    """Why a note, reason or comment is too long, or None."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT:
        return f"{name} is {size:,} bytes; at most {MAX_TEXT:,} (32 KB)"
    return None


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# A title field of a workflow input: whatever a client sends, a run holds it on one line.
Title = Annotated[str, BeforeValidator(lambda value: one_line(value) if isinstance(value, str) else value)]
# A description of a workflow input: at most MAX_TEXT characters in the run's state.
Text = Annotated[str, BeforeValidator(lambda value: shorten(value, MAX_TEXT) if isinstance(value, str) else value)]
