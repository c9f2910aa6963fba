"""The change process, declared (see itsmflow.process)."""

from itsmflow.process import Action, Process

MODELS = "workflows.change_models"

CHANGE = Process(
    name="change", prefix="CHG", workflows=("workflows.change:ChangeWorkflow",),
    input=f"{MODELS}:ChangeInput", status=f"{MODELS}:ChangeStatus", people=("requested_by",),
    actions=(
        Action("approve", "approve", f"{MODELS}:ApproveInput", who="a member of the waiting level's group, not the "
               "requester", help="Approve at the current level; prints the new state.", one_click=True),
        Action("reject", "reject", f"{MODELS}:RejectInput", who="a member of the waiting level's group",
               help="Reject at the current level: the change is rejected."),
        Action("complete", "complete", f"{MODELS}:CompleteInput", who="change managers or the CI's owning group",
               help="Record the implementation outcome; review and close follow."),
        Action("cancel", "cancel", f"{MODELS}:CancelInput", who="the requester or a change manager",
               help="Cancel before implementation (requester or change managers)."),
    ),
    states=("new", "assess", "authorize", "scheduled", "implement", "review", "closed", "rejected", "canceled"),
    final={"closed": "closed", "rejected": "rejected", "canceled": "canceled"},
    attributes=("ItsmProcess", "ItsmState", "ItsmType", "ItsmRequester", "ItsmCI", "ItsmRisk", "ItsmOutcome",
                "ItsmResolvedAt"),
    definitions={"change-policy": "definitions.change:ChangePolicy"},
    graph="itsmflow.app.graph:change_graph",
    start_attributes="itsmflow.app.change_ops:start_attributes", show="cli.change:format_change",
    description="Change enablement: assess risk, approve through a chain, schedule in a window, implement, review.",
)
