"""The testing kit (itsmflow.testing) as a process owner uses it: the `itsm` fixture runs
every loaded process on a time-skipping server; a test acts as users through the
application layer and checks which notifications went out, to whom, at exact fake times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from itsmflow.testing import AT_TOLERANCE
from tests.kit.test_external_process import MODULE


def on_time(actual, due) -> bool:
    """The fake clock runs on in real time between skips: an action lands just after `due`."""
    return timedelta(0) <= actual - due < AT_TOLERANCE


async def test_an_incident_pages_and_warns_at_exact_fake_times(itsm):
    opened = await itsm.start("incident", {"title": "core switch down", "ci": "lb-01", "impact": 1, "urgency": 2,
                                           "group": "network", "policy": "acme-incident"}, as_user="erin")
    t0 = opened.opened_at
    assert (opened.id.startswith("INC-"), opened.priority.value, opened.state.value) == (True, "P2", "new")
    on_call = itsm.outbox.expect("escalation.1.step1", run_id=opened.id, at=t0)
    assert on_call.to[0] in ("dave", "frank")  # whoever the network rotation has this week
    itsm.outbox.expect("opened", to="erin", at=t0)

    await itsm.sleep_until(t0 + timedelta(minutes=15))
    itsm.outbox.expect("escalation.2.step2", to="dave", at=t0 + timedelta(minutes=15))
    itsm.outbox.expect("sla.response.50", to="frank", at=t0 + timedelta(minutes=15))  # 50% of 30m, the group

    refused = await itsm.refusal(opened.id, "ack", as_user="erin")
    assert refused == f"erin may not acknowledge {opened.id} (not in network, on call, paged for it, or in " \
                      "major-incident)"
    acked = await itsm.act(opened.id, "ack", as_user="frank")
    assert on_time(acked.acknowledged_at, t0 + timedelta(minutes=15))
    assert acked.sla["response"].met_at == acked.acknowledged_at
    await itsm.sleep(timedelta(hours=1))
    assert [s.step for s in itsm.outbox.notifications() if s.step.startswith("sla.response")] == ["sla.response.50"]
    resolved = await itsm.act(opened.id, "resolve", {"code": "replaced-psu"}, as_user="frank")
    assert on_time(resolved.resolved_at, t0 + timedelta(minutes=75))
    itsm.outbox.expect("resolved.1", to="erin", at=resolved.resolved_at)
    assert itsm.rows("SELECT incident_id, ci FROM incident_record") == [(opened.id, "lb-01")]


async def test_a_seven_day_process_from_a_local_module_runs_out_at_exactly_seven_days(itsm_server, tmp_path,
                                                                                       monkeypatch):
    """A process owner's own process (ITSM_PROCESSES), a week long: the kit skips the week."""
    from itsmflow.testing import ProcessHarness

    monkeypatch.setenv("ITSM_PROCESSES", MODULE)
    async with ProcessHarness(itsm_server, tmp_path) as itsm:
        review = await itsm.start("review", {"title": "Q4 access review", "reviewer": "dave",
                                             "grants": ["vpn:alice", "db:bob"]}, as_user="carol")
        started = await itsm.now()
        attested = await itsm.act(review.id, "attest", {"grant": "vpn:alice", "keep": False}, as_user="dave")
        assert (attested.revoked, attested.pending) == (["vpn:alice"], ["db:bob"])
        await itsm.sleep(timedelta(days=6, hours=23))
        assert (await itsm.show(review.id)).state == "attesting"
        await itsm.sleep_until(started + timedelta(days=7, minutes=1))
        ended = await itsm.show(review.id)
        assert (ended.state, ended.pending, ended.revoked) == ("overdue", ["db:bob"], ["vpn:alice"])


async def test_an_unknown_process_is_named(itsm):
    with pytest.raises(AssertionError, match="no loaded process 'nope': unknown process"):
        await itsm.start("nope", {}, as_user="erin")
