"""The incident process, declared (see itsmflow.process)."""

from itsmflow.process import Action, Process

MODELS, SHARED = "workflows.incident_models", "workflows.models"
RESPONDERS = "members of the assigned group or incident managers"

INCIDENT = Process(
    name="incident", prefix="INC",
    workflows=("workflows.incident:IncidentWorkflow", "workflows.incident_dedup:IncidentDedupWorkflow"),
    # The dedup router names nobody: any verified user may start it; it opens nothing until a
    # verified `attach_or_open`.
    user_starts=("IncidentWorkflow", "IncidentDedupWorkflow"), continues_as_new=True,
    input=f"{MODELS}:IncidentInput", status=f"{MODELS}:IncidentStatus", people=("opened_by",),
    actions=(
        Action("ack", "acknowledge", f"{SHARED}:ActorInput", who=RESPONDERS, one_click=True,
               help="Acknowledge: stops escalation, meets the response SLA."),
        Action("escalate", "escalate", f"{MODELS}:EscalateInput", who=RESPONDERS, one_click=True,
               help="Escalate to the next step now (or --to-step N)."),
        Action("reassign", "reassign", f"{MODELS}:ReassignInput", who=RESPONDERS,
               help="Reassign to another group: its escalation policy restarts."),
        Action("priority", "set_priority", f"{MODELS}:PriorityInput", who=RESPONDERS,
               help="Change impact/urgency; SLA targets are recomputed from the open time."),
        Action("hold", "hold", f"{SHARED}:ReasonInput", who=RESPONDERS, help="Put on hold: the SLA clocks pause."),
        Action("resume", "resume", f"{SHARED}:ActorInput", who=RESPONDERS, one_click=True,
               help="Resume from hold: the SLA clocks continue."),
        Action("resolve", "resolve", f"{MODELS}:IncidentResolveInput", who=RESPONDERS,
               help="Resolve with a code and notes."),
        Action("reopen", "reopen", f"{SHARED}:ReasonInput", who="the opener or " + RESPONDERS,
               help="Reopen a resolved incident within the policy's window."),
        Action("note", "note", f"{MODELS}:NoteInput", who="any known user", help="Add a note to the timeline."),
        Action("major", "declare_major", f"{SHARED}:ReasonInput", who="incident managers",
               help="Declare a major incident: pages the major-incident group."),
    ),
    signals=("attach",),
    states=("new", "in_progress", "on_hold", "resolved", "closed"),
    final={"closed": "resolved"},
    attributes=("ItsmProcess", "ItsmState", "ItsmPriority", "ItsmRequester", "ItsmGroup", "ItsmCI", "ItsmDedupKey",
                "ItsmBreached", "ItsmDueAt", "ItsmAckedAt", "ItsmResolvedAt", "ItsmOutcome", "ItsmBreaches"),
    definitions={"incident-policy": "definitions.incident:IncidentPolicy"},
    graph="itsmflow.app.graph:incident_graph",
    start_attributes="workflows.incident_models:start_attributes", show="cli.incident:format_incident",
    description="Incident response: priority from impact and urgency, escalation steps, SLA clocks, major incidents.",
)
