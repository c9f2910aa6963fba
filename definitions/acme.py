"""The shipped sample organisation "acme": what the demo, docs and tests use."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from definitions.approvals import ApprovalChain, ApprovalLevel, ApprovalRule, TimeoutAction
from definitions.change import ChangePolicy, ConflictAction, Risk, RiskRule, StandardTemplate, WindowViolation
from definitions.org import ConfigurationItem, Criticality, Group, Organisation, Person, Service
from definitions.problem import ProblemPolicy
from definitions.windows import WEEKDAYS_MON_FRI, Blackout, MaintenanceWindow, Weekday

# (username, name, manager): grace heads acme; carol and bob report to her.
_PEOPLE = [
    ("alice", "Alice Archer", "carol"),
    ("bob", "Bob Baker", "grace"),
    ("carol", "Carol Chen", "grace"),
    ("dave", "Dave Diaz", "bob"),
    ("erin", "Erin Evans", "bob"),
    ("frank", "Frank Fischer", "dave"),
    ("grace", "Grace Gupta", None),
]

ORGANISATION = Organisation(
    name="acme",
    version=1,
    description="Sample organisation used by the demo, the docs and the tests.",
    people=[Person(username=u, name=n, email=f"{u}@acme.example", manager=m) for u, n, m in _PEOPLE],
    groups=[
        Group(name="change-managers", members=["bob", "carol"], email="change-managers@acme.example"),
        Group(name="cab", members=["bob", "carol", "dave"], email="cab@acme.example"),
        Group(name="network", members=["dave", "frank"], email="network@acme.example"),
        Group(name="service-desk", members=["erin", "frank"], email="service-desk@acme.example"),
        Group(name="db-admins", members=["grace"], email="db-admins@acme.example"),
        Group(name="major-incident", members=["bob", "carol"], email="major-incident@acme.example"),
        Group(name="problem-managers", members=["carol", "grace"], email="problem-managers@acme.example"),
    ],
    services=[
        Service(name="web-shop", owner_group="service-desk"),
        Service(name="payments", owner_group="db-admins"),
    ],
    cis=[
        ConfigurationItem(name="web-01", criticality=Criticality.LOW, owner_group="service-desk",
                          services=["web-shop"]),
        ConfigurationItem(name="web-02", criticality=Criticality.LOW, owner_group="service-desk",
                          services=["web-shop"]),
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
    return {Risk.LOW: ApprovalChain(levels=[manager_level]), Risk.MODERATE: two_levels,
            Risk.HIGH: two_levels}, emergency


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

DEMO_CHANGE_POLICY = ChangePolicy.model_validate({
    **CHANGE_POLICY.model_dump(),
    "name": "acme-demo",
    "description": "DEMO ONLY: always-open window, no blackouts, short approval timeouts.",
    "demo": True,
    "approvals": _demo_approvals,
    "emergency_approvals": _demo_emergency,
    "windows": [MaintenanceWindow(name="always", always_open=True)],
    "blackouts": [],
    "outside_window": WindowViolation.MOVE,
    "templates": _TEMPLATES[:1],
})


def _incident_policy():
    """Built lazily: the calendar and on-call models live in their own modules."""
    from datetime import date

    from definitions.calendar import BusinessCalendar
    from definitions.incident import EscalationPolicy, EscalationStep, IncidentPolicy, Priority, SlaTargets, StepKind
    from definitions.oncall import OnCallSchedule, Rotation

    monday = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    business_hours = ["09:00-17:00"]

    def rotation(name: str, users: list[str]) -> OnCallSchedule:
        return OnCallSchedule(name=name, rotation=Rotation(users=users, handoff=monday, length=timedelta(days=7)))

    def on_call_then_group(name: str, group: str, schedule: str) -> EscalationPolicy:
        minutes = timedelta(minutes=15)
        return EscalationPolicy(name=name, group=group, steps=[
            EscalationStep(kind=StepKind.NOTIFY_ON_CALL, schedule=schedule, delay=minutes),
            EscalationStep(kind=StepKind.NOTIFY_GROUP, group=group, delay=minutes),
            EscalationStep(kind=StepKind.IF_TIME_BETWEEN, calendar="business", when="outside"),
            EscalationStep(kind=StepKind.NOTIFY_GROUP, group="major-incident", delay=minutes),
            EscalationStep(kind=StepKind.REPEAT, from_step=1, max_loops=2),
        ])

    return IncidentPolicy(
        name="acme-incident",
        version=1,
        description="Acme incidents: on-call first, then the group; P1/P2 24x7, P3/P4 on business hours.",
        organisation="acme",
        priority_matrix={"1/1": Priority.P1, "1/2": Priority.P2, "2/1": Priority.P2, "1/3": Priority.P3,
                         "2/2": Priority.P3, "3/1": Priority.P3},
        default_priority=Priority.P4,
        sla={
            Priority.P1: SlaTargets(response=timedelta(minutes=15), resolution=timedelta(hours=4), calendar="24x7"),
            Priority.P2: SlaTargets(response=timedelta(minutes=30), resolution=timedelta(hours=8), calendar="24x7"),
            Priority.P3: SlaTargets(response=timedelta(hours=2), resolution=timedelta(hours=8), calendar="business"),
            Priority.P4: SlaTargets(response=timedelta(hours=8), resolution=timedelta(hours=24), calendar="business"),
        },
        calendars=[
            BusinessCalendar(name="24x7", always_open=True),
            BusinessCalendar(
                name="business", timezone="UTC",
                hours={day: business_hours for day in ("mon", "tue", "wed", "thu", "fri")},
                holidays=[date(2026, 12, 25), date(2027, 1, 1)],
            ),
        ],
        schedules=[
            rotation("service-desk-oncall", ["erin", "frank"]),
            rotation("network-oncall", ["dave", "frank"]),
            rotation("db-oncall", ["grace"]),
        ],
        escalation_policies=[
            on_call_then_group("service-desk", "service-desk", "service-desk-oncall"),
            on_call_then_group("network", "network", "network-oncall"),
            on_call_then_group("db-admins", "db-admins", "db-oncall"),
        ],
        default_group="service-desk",
        manager_group="major-incident",
        major_incident_group="major-incident",
        reopen_window=timedelta(days=3),
    )


INCIDENT_POLICY = _incident_policy()

PROBLEM_POLICY = ProblemPolicy(
    name="acme-problem", version=1, organisation="acme",
    description="Acme problems: three incidents on one CI within a week suggest a problem.",
    suggest_after=3, suggest_window=timedelta(days=7), manager_group="problem-managers",
    known_error_groups=["service-desk"],
)


def _catalog():
    from definitions.calendar import BusinessCalendar
    from definitions.catalog import (
        BundleEntry,
        Catalog,
        CatalogItem,
        Condition,
        FulfillmentTask,
        TaskKind,
        Variable,
        VariableType,
    )

    def approval(group: str) -> ApprovalChain:
        return ApprovalChain(levels=[ApprovalLevel(name=group, group=group, timeout=timedelta(days=2),
                                                   on_timeout=TimeoutAction.REJECT)])

    text = VariableType.STRING
    return Catalog(
        name="acme-catalog", version=1, organisation="acme",
        description="Acme service catalog: laptops, VPN and database access, onboarding.",
        calendars=[BusinessCalendar(name="business", hours={d: ["09:00-17:00"] for d in
                                                            ("mon", "tue", "wed", "thu", "fri")})],
        items=[
            CatalogItem(
                name="laptop", title="Laptop", sla=timedelta(hours=16),
                description="A laptop from the standard range; no manager approval needed.",
                variables=[Variable(name="model", type=VariableType.CHOICE, choices=["standard-14", "pro-16", "mac-14"],
                                    help="Model from the standard range"),
                           Variable(name="justification", type=text, help="Why you need it")],
                tasks=[FulfillmentTask(name="prepare", kind=TaskKind.MANUAL, group="service-desk",
                                       title="Prepare and hand over the laptop"),
                       FulfillmentTask(name="record-asset", kind=TaskKind.AUTOMATED, action="record_asset",
                                       group="service-desk", title="Record the asset in the CMDB", after=["prepare"])],
            ),
            CatalogItem(
                name="vpn-access", title="VPN access", sla=timedelta(hours=4), approval=approval("network"),
                expiry_variable="duration", description="Remote access; revoked automatically when it expires.",
                variables=[Variable(name="duration", type=VariableType.INTEGER, minimum=1, maximum=90,
                                    help="Days of access (1-90)"),
                           Variable(name="reason", type=text, help="Why you need remote access")],
                tasks=[FulfillmentTask(name="grant", kind=TaskKind.AUTOMATED, action="grant_vpn", group="network",
                                       title="Grant VPN access")],
            ),
            CatalogItem(
                name="db-access", title="Database access", sla=timedelta(hours=8), approval=approval("db-admins"),
                approval_when=Condition(variable="role", values=["write"]),
                description="Read access is granted directly; write access needs a database admin.",
                variables=[Variable(name="database", type=VariableType.CI, ci_class="database", help="Database CI"),
                           Variable(name="role", type=VariableType.CHOICE, choices=["read", "write"],
                                    help="read or write")],
                tasks=[FulfillmentTask(name="grant", kind=TaskKind.AUTOMATED, action="grant_db", group="db-admins",
                                       title="Grant the database role"),
                       FulfillmentTask(name="verify", kind=TaskKind.MANUAL, group="db-admins", after=["grant"],
                                       title="Verify the grant works")],
            ),
            CatalogItem(
                name="account", title="User account", sla=timedelta(hours=4),
                variables=[Variable(name="name", type=text, help="Full name"), Variable(name="team", type=text)],
                tasks=[FulfillmentTask(name="create", kind=TaskKind.AUTOMATED, action="create_account",
                                       group="service-desk", title="Create the directory account")],
            ),
            CatalogItem(
                name="welcome", title="Welcome message", sla=timedelta(hours=1),
                variables=[Variable(name="name", type=text)],
                tasks=[FulfillmentTask(name="send", kind=TaskKind.NOTIFY, group="service-desk",
                                       title="Send the welcome message")],
            ),
            CatalogItem(
                name="onboarding", title="Onboard a new hire", sla=timedelta(hours=24),
                description="Account first, then laptop and VPN in parallel, then a welcome message.",
                variables=[Variable(name="name", type=text, help="New hire's full name"),
                           Variable(name="start_date", type=VariableType.DATE, help="First day (YYYY-MM-DD)"),
                           Variable(name="team", type=text, help="Team joined")],
                bundle=[
                    BundleEntry(item="account", variables={"name": "{name}", "team": "{team}"}),
                    BundleEntry(item="laptop", after=["account"],
                                variables={"model": "standard-14", "justification": "new hire {name} ({team})"}),
                    BundleEntry(item="vpn-access", after=["account"],
                                variables={"duration": "90", "reason": "new hire {name}"}),
                    BundleEntry(item="welcome", after=["laptop", "vpn-access"], variables={"name": "{name}"}),
                ],
            ),
        ],
    )


CATALOG = _catalog()
