"""Writing Mermaid text that always parses: safe node ids, escaped labels, and gantt labels
stripped of the characters the gantt grammar reserves.

Definitions and run histories carry user text (titles, comments, group names); none of it
may break the diagram or smuggle in statements, so every label goes through `label` or
`gantt_text` and every id through `Flowchart.id_for`."""

from __future__ import annotations

import re
from contextlib import contextmanager

_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;"}
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
_RESERVED = {"end", "graph", "flowchart", "subgraph", "style", "linkstyle", "classdef", "class", "click", "call",
             "href", "direction", "default"}
SHAPES = {
    "box": ('["', '"]'),
    "round": ('("', '")'),
    "stadium": ('(["', '"])'),
    "decision": ('{"', '"}'),
    "hexagon": ('{{"', '"}}'),
    "subroutine": ('[["', '"]]'),
    "flag": ('>"', '"]'),
}
ARROWS = {"solid": "-->", "dotted": "-.->", "link": "-.-", "thick": "==>"}
CLASSES = {
    "state": "fill:#e8f0fe,stroke:#3b5bdb",
    "exit": "fill:#fdecea,stroke:#c92a2a",
    "human": "fill:#fff4d6,stroke:#a67c00",
    "manual": "fill:#fff4d6,stroke:#a67c00",
    "automated": "fill:#e6fcf5,stroke:#087f5b",
    "notify": "fill:#f3f0ff,stroke:#5f3dc4",
    "note": "fill:#f8f9fa,stroke:#adb5bd,stroke-dasharray:3 3",
}


def escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label: quotes, brackets and `#` become entity codes,
    line breaks become spaces (use `label` for intended breaks)."""
    flat = " ".join(str(text).split())
    return "".join(_ENTITIES.get(char, char) for char in flat)


def label(*lines: str) -> str:
    """A multi-line label: each line escaped, joined by <br/>; empty lines dropped."""
    return "<br/>".join(escape(line) for line in lines if line)


def gantt_text(text: str) -> str:
    """A gantt title, section or task name: the grammar ends a name at ':' and reads '#' and
    ';' as comment or separator, so they become spaces."""
    return " ".join(re.sub(r"[:;#%]", " ", str(text)).split()) or "-"


class Flowchart:
    """One `flowchart`, built in order: nodes and subgraphs first, then every edge, then
    classes, so output is deterministic and no edge pulls a node into the wrong subgraph."""

    def __init__(self, direction: str = "TD") -> None:
        self.direction = direction
        self.comments: list[str] = []
        self.body: list[str] = []
        self.edges: list[str] = []
        self.classes: dict[str, list[str]] = {}
        self._ids: dict[str, str] = {}
        self._depth = 1

    def id_for(self, key: str) -> str:
        """The node id for `key`: letters, digits and '_' only, never a keyword, unique."""
        if key in self._ids:
            return self._ids[key]
        base = _ID_UNSAFE.sub("_", key).strip("_") or "node"
        if base.lower() in _RESERVED or not base[0].isalpha():
            base = f"n_{base}"
        candidate, number = base, 2
        while candidate in self._ids.values():
            candidate, number = f"{base}_{number}", number + 1
        self._ids[key] = candidate
        return candidate

    def comment(self, text: str) -> None:
        self.comments.append(f"    %% {' '.join(str(text).split())}")

    def node(self, key: str, text: str, shape: str = "box", css: str | None = None) -> str:
        """Declare a node; `text` is an already escaped label (see `label`)."""
        node_id = self.id_for(key)
        opening, closing = SHAPES[shape]
        self.body.append(f"{'    ' * self._depth}{node_id}{opening}{text}{closing}")
        if css:
            self.classes.setdefault(css, []).append(node_id)
        return node_id

    @contextmanager
    def subgraph(self, key: str, text: str, direction: str | None = None):
        graph_id = self.id_for(key)
        indent = "    " * self._depth
        self.body.append(f'{indent}subgraph {graph_id}["{text}"]')
        if direction:
            self.body.append(f"{indent}    direction {direction}")
        self._depth += 1
        try:
            yield graph_id
        finally:
            self._depth -= 1
            self.body.append(f"{indent}end")

    def edge(self, source: str, target: str, text: str = "", style: str = "solid") -> None:
        """An edge between two declared ids; `text` is plain and gets escaped here."""
        arrow = ARROWS[style]
        middle = f'{arrow}|"{escape(text)}"|' if text else arrow
        self.edges.append(f"    {source} {middle} {target}")

    def render(self) -> str:
        lines = [f"flowchart {self.direction}", *self.comments, *self.body, *self.edges]
        for css in sorted(self.classes):
            lines.append(f"    classDef {css} {CLASSES[css]}")
            lines.append(f"    class {','.join(self.classes[css])} {css}")
        return "\n".join(lines) + "\n"
