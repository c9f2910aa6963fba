"""What a process owner's workflow stands on (imports temporalio; use inside workflow code):

- `ProcessWorkflow`: settled waits (`wait`), notifications (`notify`), search-attribute state
  (`set_search_state`, `publish_outcome`), the status kept in the memo for reads without a
  worker (`publish_status`, first thing in `run`), durations spelled as definitions spell them;
- `SettleUpdate`: the `settle` update a start waits on, so `itsm process start` returns at the
  run's first waiting state;
- `refuse` / `refuse_state`: reject an update in its validator (nothing reaches history; a
  state refusal is sent once more by the application layer, a validator can run a step behind);
- `open_or_attach`: start a run of its own from a workflow (an abandoned child), or learn that
  it runs already;
- override `pending_actions()` to say who may act now (kept in the memo).

Built-in processes use exactly these."""

from workflows.base import NOTIFY_OPTIONS, ProcessWorkflow, SettleUpdate, open_or_attach, refuse, refuse_state

__all__ = ["NOTIFY_OPTIONS", "ProcessWorkflow", "SettleUpdate", "open_or_attach", "refuse", "refuse_state"]
