"""itsmflow: the public process kit. A process owner declares a process (`Process`, with its
human `Action`s) and registers it under the entry point group `itsmflow.processes` (or names
it in ITSM_PROCESSES=module:attr,...); the worker, ids, CLI, audit trail, ITSM_AUTH and KPIs
derive everything from that declaration. Importing this package stays light: no temporalio,
no pydantic."""

from itsmflow.process import Action, Process

__all__ = ["Action", "Process"]
