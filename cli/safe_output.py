"""Everything printed for people is neutral: a title can carry terminal escapes (OSC links,
CSI colour and cursor moves), a carriage return that hides what came before it, or a bidi
override that reorders what a reader sees. Those characters leave the CLI spelled out as
`\\uXXXX`, which is also how JSON writes them, so `--json` output keeps its meaning and stays
valid. Standard library only: the lean `runs show` path installs it too."""

from __future__ import annotations

import io
import re
import sys

# C0 controls but tab and newline, DEL, C1 controls, bidi marks, embeddings, overrides and
# isolates, line and paragraph separators.
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def neutral(text: str) -> str:
    return UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


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
