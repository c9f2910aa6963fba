"""The shipped sample organisation "acme": what the demo, docs and tests use."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from definitions.approvals import ApprovalChain, ApprovalLevel, ApprovalRule, TimeoutAction
from definitions.change import ChangePolicy, ConflictAction, Risk, RiskRule, StandardTemplate, WindowViolation
from definitions.org import ConfigurationItem, Criticality, Group, Organisation, Person, Service
from definitions.windows import WEEKDAYS_MON_FRI, Blackout, MaintenanceWindow, Weekday

_PEOPLE = [
    ("alice", "Alice Archer"),
    ("bob", "Bob Baker"),
    ("carol", "Carol Chen"),
    ("dave", "Dave Diaz"),
    ("erin", "Erin Evans"),
    ("frank", "Frank Fischer"),
    ("grace", "Grace Gupta"),
]

ORGANISATION = Organisation(
    name="acme",
    version=1,
    description="Sample organisation used by the demo, the docs and the tests.",
    people=[Person(username=u, name=n, email=f"{u}@acme.example") for u, n in _PEOPLE],
    groups=[
        Group(name="change-managers", members=["bob", "carol"], email="change-managers@acme.example"),
        Group(name="cab", members=["bob", "carol", "dave"], email="cab@acme.example"),
        Group(name="network", members=["dave", "frank"], email="network@acme.example"),
        Group(name="service-desk", members=["erin", "frank"], email="service-desk@acme.example"),
        Group(name="db-admins", members=["grace"], email="db-admins@acme.example"),
    ],
    services=[
        Service(name="web-shop", owner_group="service-desk"),
        Service(name="payments", owner_group="db-admins"),
    ],
    cis=[
        ConfigurationItem(name="web-01", criticality=Criticality.LOW, owner_group="service-desk", services=["web-shop"]),
        ConfigurationItem(name="web-02", criticality=Criticality.LOW, owner_group="service-desk", services=["web-shop"]),
        ConfigurationItem(
            name="lb-01", ci_class="load-balancer", criticality=Criticality.MEDIUM, owner_group="network",
            services=["web-shop"],
        ),
        ConfigurationItem(
            name="db-prod-1", ci_class="database", criticality=Criticality.CRITICAL, owner_group="db-admins",
            services=["web-shop", "payments"],
        ),
    ],
)

_RISK_RULES = [
    RiskRule(name="critical-ci", risk=Risk.HIGH, ci_criticality=[Criticality.CRITICAL]),
    RiskRule(name="outage", risk=Risk.HIGH, outage=True),
    RiskRule(name="medium-ci", risk=Risk.MODERATE, ci_criticality=[Criticality.MEDIUM, Criticality.HIGH]),
]


def _chains(timeout: timedelta) -> tuple[dict[Risk, ApprovalChain], ApprovalChain]:
    manager_level = ApprovalLevel(
        name="change-manager", group="change-managers", rule=ApprovalRule.ANY, timeout=timeout,
        on_timeout=TimeoutAction.ESCALATE, escalate_to="cab", max_escalations=2,
    )
    cab_level = ApprovalLevel(
        name="cab", group="cab", rule=ApprovalRule.QUORUM, quorum=2, timeout=timeout * 2,
        on_timeout=TimeoutAction.REJECT,
    )
    two_levels = ApprovalChain(levels=[manager_level, cab_level])
    emergency = ApprovalChain(
        levels=[
            ApprovalLevel(
                name="ecab", group="change-managers", rule=ApprovalRule.ANY, timeout=timeout / 12,
                on_timeout=TimeoutAction.ESCALATE, escalate_to="cab", max_escalations=3,
            )
        ]
    )
    return {Risk.LOW: ApprovalChain(levels=[manager_level]), Risk.MODERATE: two_levels, Risk.HIGH: two_levels}, emergency


_TEMPLATES = [
    StandardTemplate(
        name="restart-web-server", title="Restart a web server", window="any", cis=["web-01", "web-02"],
        max_duration=timedelta(hours=1),
        description="Rolling restart of one web node behind the load balancer; pre-approved.",
    ),
    StandardTemplate(
        name="rotate-tls-certificate", title="Rotate the load balancer TLS certificate", window="weeknight",
        cis=["lb-01"], max_duration=timedelta(hours=1),
    ),
]

_approvals, _emergency = _chains(timedelta(days=1))

CHANGE_POLICY = ChangePolicy(
    name="acme-change",
    version=1,
    description="Acme change policy: weeknight windows, CAB for moderate and high risk.",
    organisation="acme",
    risk_rules=_RISK_RULES,
    approvals=_approvals,
    emergency_approvals=_emergency,
    implementer_groups=["change-managers"],
    windows=[
        MaintenanceWindow(name="weeknight", days=WEEKDAYS_MON_FRI, start=time(22), end=time(4)),
        MaintenanceWindow(name="weekend", days=[Weekday.SAT, Weekday.SUN], start=time(6), end=time(18)),
    ],
    blackouts=[
        Blackout(
            name="fiscal-year-close",
            start=datetime(2027, 6, 28, tzinfo=timezone.utc),
            end=datetime(2027, 7, 3, tzinfo=timezone.utc),
            reason="Finance systems freeze for the fiscal year close.",
        )
    ],
    outside_window=WindowViolation.REJECT,
    conflicts=ConflictAction.WARN,
    templates=_TEMPLATES,
)

_demo_approvals, _demo_emergency = _chains(timedelta(minutes=30))

DEMO_CHANGE_POLICY = ChangePolicy(
    name="acme-demo",
    version=1,
    description="DEMO ONLY: always-open window, no blackouts, short approval timeouts.",
    organisation="acme",
    demo=True,
    risk_rules=_RISK_RULES,
    approvals=_demo_approvals,
    emergency_approvals=_demo_emergency,
    implementer_groups=["change-managers"],
    windows=[MaintenanceWindow(name="always", always_open=True)],
    outside_window=WindowViolation.MOVE,
    conflicts=ConflictAction.WARN,
    templates=_TEMPLATES[:1],
)
