"""Which code path a run takes where the code changed while runs were open
(`workflow.patched`), with one marker per run for runs started now instead of one per
patch: each patch costs a new run a marker and a TemporalChangeVersion upsert (two history
events and a round of server work), and a run starts with a dozen of them.

A run records the newest baseline when it starts and takes every path that baseline folds
(and every older one's). A run recorded before a baseline existed asks each patch as it
did, so its history replays unchanged; a run on an older baseline keeps that baseline's
paths for good. A patch added later is asked on its own until a newer baseline folds it in.

- `itsm-baseline-1` folds the 13 patches of FOLDED.
- `itsm-baseline-2` adds `local_side_effects()` (no patch id of its own: only runs started on
  it take the path): notifications and CMDB calls run as a local activity first, in the
  workflow task that asks for them, and as an activity when that attempt fails
  (`ProcessWorkflow._local_first`)."""

from __future__ import annotations

from temporalio import workflow

BASELINE_1 = "itsm-baseline-1"
BASELINE_2 = "itsm-baseline-2"
BASELINE = BASELINE_2  # what a run started now records
BASELINES = (BASELINE_2, BASELINE_1)  # newest first: a run asks them in this order, once each
# Every patch that existed when BASELINE_1 was made, except the two asked only under ITSM_AUTH
# (or on replay), whose markers say what the run did: `itsm-verified-every-start` (the start
# got a verdict: folding it would have a replay verify a run that never was) and
# `itsm-verified-signals` (its signals were checked: the audit marks those it dropped).
FOLDED = frozenset({
    "concurrent-side-effects", "duration-spelling", "fulfillment-sla-watch", "itsm-memo-status",
    "itsm-verified-start", "kpi-attributes", "problem-change", "problem-end-once",
    "problem-from-workflow", "problem-link", "release-router-once", "router-continue-as-new", "sod-beneficiary",
})


def level() -> int:
    """The baseline this run started on: 2, 1, or 0 (before any). The SDK keeps a run's first
    answer to each marker, so ask it first in the run's first activation (ProcessWorkflow's
    init, or the worker's start interceptor) and as often as needed after. A new run asks
    only the newest (recording its one marker); a replay of an older one finds no marker
    for the newer baselines and goes on to the one it recorded."""
    for number, marker in zip(range(len(BASELINES), 0, -1), BASELINES):
        if workflow.patched(marker):
            return number
    return 0


def baseline() -> bool:
    """True when this run started on a baseline (any)."""
    return level() >= 1


def local_side_effects() -> bool:
    """Notifications and CMDB calls run as local activities (runs started on `itsm-baseline-2`)."""
    return level() >= 2


def patched(patch_id: str) -> bool:
    """`workflow.patched(patch_id)`, answered by the baseline for a FOLDED patch."""
    if patch_id in FOLDED and baseline():
        return True
    return workflow.patched(patch_id)


def took(recorded: set[str], patch_id: str) -> bool:
    """Whether a run whose history records the patch markers `recorded` took `patch_id`'s path
    (for readers of history: the audit trail)."""
    return patch_id in recorded or (patch_id in FOLDED and bool(recorded & set(BASELINES)))
