"""Release management, declared (see itsmflow.process)."""

from itsmflow.process import Action, Process

MODELS = "workflows.release_models"

RELEASE = Process(
    name="release", prefix="REL", workflows=("workflows.release:ReleaseWorkflow",),
    input=f"{MODELS}:ReleaseInput", status=f"{MODELS}:ReleaseStatus", people=("requested_by", "manager"),
    actions=(
        Action("approve", "approve", "workflows.change_models:ApproveInput",
               who="a member of the waiting level's group, not the release manager", one_click=True,
               help="Approve the release at the current level."),
        Action("reject", "reject", "workflows.change_models:RejectInput", who="a member of the waiting level's group",
               help="Reject the release: its changes are canceled."),
        Action("go", "go", f"{MODELS}:GoInput", who="the release manager", one_click=True,
               help="Go at window start: its changes are implemented along the DAG."),
        Action("no-go", "no_go", f"{MODELS}:NoGoInput", who="the release manager",
               help="No-go at window start: every change is canceled and the calendar freed."),
        Action("cancel", "cancel", "workflows.models:ReasonInput", who="who planned it or the release manager",
               help="Call the release off before its window opens: its changes are canceled."),
    ),
    signals=("member_report",),
    states=("planning", "authorize", "scheduled", "go-no-go", "implementing", "backing-out", "closed", "rejected",
            "canceled"),
    final={"closed": "closed", "rejected": "rejected", "canceled": "canceled"},
    attributes=("ItsmProcess", "ItsmState", "ItsmRequester", "ItsmGroup", "ItsmRisk", "ItsmOutcome", "ItsmResolvedAt"),
    start_attributes="itsmflow.app.release_ops:start_attributes", show="cli.release:format_release",
    description="Release management: changes bundled under one approval and window, go / no-go, a DAG, back-out.",
)
