"""Everything printed for people is neutral: a title can carry terminal escapes (OSC links,
CSI colour and cursor moves), a carriage return that hides what came before it, or a bidi
override that reorders what a reader sees. Those characters leave the CLI spelled out as
`\\uXXXX`, which is also how JSON writes them, so `--json` output keeps its meaning and stays
valid. Standard library only: the lean `runs show` path installs it too."""

from __future__ import annotations

import io
import sys

from definitions.characters import OUTPUT_UNSAFE


def neutral(text: str) -> str:
    return OUTPUT_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class NeutralStream(io.TextIOBase):
    """A text stream that writes through `inner`, every unsafe character spelled out."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(neutral(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self):  # click writes through a stream whose encoding and errors match its own
        return self.inner.encoding

    @property
    def errors(self):
        return self.inner.errors

    @property
    def buffer(self):  # binary writes (none of ours) bypass the filter: click asks only when it must
        return self.inner.buffer


def install() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, NeutralStream):
            setattr(sys, name, NeutralStream(stream))
