"""Which code path a run takes where the code changed while runs were open
(`workflow.patched`), with one marker per run for runs started now instead of one per
patch: each patch costs a new run a marker and a TemporalChangeVersion upsert (two history
events and a round of server work), and a run starts with a dozen of them.

A run started since BASELINE exists records only BASELINE and takes every FOLDED path.
A run recorded before it asks each patch as it did, so its history replays unchanged.
A patch added later is asked on its own until a newer baseline folds it in."""

from __future__ import annotations

from temporalio import workflow

BASELINE = "itsm-baseline-1"
# Every patch that existed when BASELINE was made, except the two asked only under ITSM_AUTH
# (or on replay), whose markers say what the run did: `itsm-verified-every-start` (the start
# got a verdict: folding it would have a replay verify a run that never was) and
# `itsm-verified-signals` (its signals were checked: the audit marks those it dropped).
FOLDED = frozenset({
    "concurrent-side-effects", "duration-spelling", "fulfillment-sla-watch", "itsm-memo-status",
    "itsm-verified-start", "kpi-attributes", "problem-change", "problem-end-once",
    "problem-from-workflow", "problem-link", "release-router-once", "router-continue-as-new", "sod-beneficiary",
})


def baseline() -> bool:
    """True when this run started on BASELINE. The SDK keeps a run's first answer, so ask it
    first in the run's first activation (ProcessWorkflow's init, or the worker's start
    interceptor) and as often as needed after."""
    return workflow.patched(BASELINE)


def patched(patch_id: str) -> bool:
    """`workflow.patched(patch_id)`, answered by the baseline for a FOLDED patch."""
    if patch_id in FOLDED and baseline():
        return True
    return workflow.patched(patch_id)


def took(recorded: set[str], patch_id: str) -> bool:
    """Whether a run whose history records the patch markers `recorded` took `patch_id`'s path
    (for readers of history: the audit trail)."""
    return patch_id in recorded or (patch_id in FOLDED and BASELINE in recorded)
