"""itsmflow: the public process kit. A process owner declares a process (`Process`, with its
human `Action`s) and registers it under the entry point group `itsmflow.processes` (or names
it in ITSM_PROCESSES=module:attr,...); the worker, ids, CLI, audit trail, ITSM_AUTH and KPIs
derive everything from that declaration. Importing this package stays light: no temporalio,
no pydantic."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from itsmflow.process import Action, Process

__all__ = ["Action", "Process"]


def __getattr__(name: str):
    """`from itsmflow import Process` loads the declaration module on first use, so the lean
    `runs show` path (which imports itsmflow.app.lean) pays for nothing it does not use."""
    if name in __all__:
        from itsmflow import process

        return getattr(process, name)
    raise AttributeError(name)
