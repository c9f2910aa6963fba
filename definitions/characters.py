"""The characters no text shown to people may carry raw: C0 and C1 controls, DEL, bidi marks,
embeddings, overrides and isolates, line and paragraph separators. One set for every boundary:
titles are flattened where they enter (definitions.text), output is spelled out where it
leaves (cli.safe_output). Standard library only: the lean `runs show` path imports it."""

from __future__ import annotations

import re

# Tab and newline are controls too, but harmless in output: `OUTPUT_UNSAFE` keeps them.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]+")
OUTPUT_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
