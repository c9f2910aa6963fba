"""What a process owner's workflow stands on (imports temporalio; use inside workflow code):

- `ProcessWorkflow`: settled waits (`wait`), notifications (`notify`, or `send` a queued
  `Notify`), CMDB calls with a bounded retry that say so when the CMDB stays down (`cmdb`),
  search-attribute state (`set_search_state`, `publish_outcome`), the status kept in the memo
  for reads without a worker (`publish_status`, first thing in `run`), durations spelled as
  definitions spell them;
- `SettleUpdate`: the `settle` update a start waits on, so `itsm process start` returns at the
  run's first waiting state;
- `refuse` / `refuse_state`: reject an update in its validator (nothing reaches history; a
  state refusal is sent once more by the application layer, a validator can run a step behind);
- `open_or_attach`: start a run of its own from a workflow (an abandoned child, by its run
  method: `open_or_attach(ReviewWorkflow.run, ...)`), or learn that it runs already;
- side effects queued as typed objects (`SideEffect`, `Notify`, `run_in_order`,
  `run_in_lanes`) and the shared models (`Event`, `append_event`, `SlaClock`, `ActorInput`,
  `ReasonInput`, `ResolveInput`);
- override `pending_actions()` to say who may act now (kept in the memo).

Built-in processes use exactly these. Error types are in `itsmflow.errors`."""

from workflows.base import (
    CMDB_OPTIONS,
    NOTIFY_OPTIONS,
    ActivityOptions,
    ProcessWorkflow,
    SettleUpdate,
    open_or_attach,
    refuse,
    refuse_state,
)
from workflows.models import ActorInput, Event, ReasonInput, ResolveInput, SlaClock, append_event
from workflows.side_effects import Notify, SideEffect, run_in_lanes, run_in_order

__all__ = ["CMDB_OPTIONS", "NOTIFY_OPTIONS", "ActivityOptions", "ActorInput", "Event", "Notify", "ProcessWorkflow",
           "ReasonInput", "ResolveInput", "SettleUpdate", "SideEffect", "SlaClock", "append_event", "open_or_attach",
           "refuse", "refuse_state", "run_in_lanes", "run_in_order"]
