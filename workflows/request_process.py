"""The request process and the item and task processes its runs start, declared (see
itsmflow.process)."""

from itsmflow.process import Action, Process

MODELS = "workflows.request_models"
APPROVERS = "a member of the item's approval group, not the requester"

REQUEST = Process(
    name="request", prefix="REQ", workflows=("workflows.request:RequestWorkflow",),
    input=f"{MODELS}:RequestInput", status=f"{MODELS}:RequestStatus", people=("requested_by", "requested_for"),
    actions=(Action("cancel", "cancel", f"{MODELS}:CancelRequestInput", who="the requester",
                    help="Cancel the request and its open items."),),
    signals=("item_changed",),
    states=("requested", "approval", "fulfilling", "fulfilled", "rejected", "canceled", "failed"),
    final={"fulfilled": "fulfilled", "rejected": "rejected", "canceled": "canceled", "failed": "failed"},
    attributes=("ItsmProcess", "ItsmState", "ItsmType", "ItsmRequester", "ItsmOutcome", "ItsmResolvedAt"),
    definitions={"catalog": "definitions.catalog:Catalog"},
    graph="itsmflow.app.graph:catalog_graph",
    start_attributes="itsmflow.app.request_ops:start_attributes",
    description="Service requests from the catalog: items with approvals, fulfillment tasks and SLAs.",
)

ITEM = Process(
    name="item", prefix="RITM", workflows=("workflows.item:ItemWorkflow",), child_of="request",
    input=f"{MODELS}:ItemInput", status=f"{MODELS}:ItemStatus", people=("requested_by",),
    actions=(
        Action("approve", "approve", "workflows.change_models:ApproveInput", who=APPROVERS, one_click=True,
               help="Approve the item."),
        Action("reject", "reject", "workflows.change_models:RejectInput", who=APPROVERS, help="Reject the item."),
    ),
    signals=("cancel",),
    states=("requested", "approval", "fulfilling", "fulfilled", "rejected", "canceled", "failed"),
    final={"fulfilled": "fulfilled", "rejected": "rejected", "canceled": "canceled", "failed": "failed"},
    attributes=("ItsmProcess", "ItsmState", "ItsmType", "ItsmRequester", "ItsmParent", "ItsmDueAt", "ItsmBreached",
                "ItsmOutcome", "ItsmResolvedAt", "ItsmBreaches"),
    description="One catalog item of a request: approval, fulfillment tasks, an SLA.",
)

TASK = Process(
    name="task", prefix="TASK", workflows=("workflows.task:ManualTaskWorkflow",), child_of="request",
    input=f"{MODELS}:ManualTaskInput", status=f"{MODELS}:ManualTaskResult",
    actions=(
        Action("complete", "complete", f"{MODELS}:TaskActionInput", who="a member of the task's group", one_click=True,
               help="Mark the task done."),
        Action("fail", "fail", f"{MODELS}:TaskActionInput", who="a member of the task's group",
               help="Mark the task failed."),
    ),
    signals=("cancel",),
    states=("open", "done", "failed", "canceled"),
    final={"done": "done", "failed": "failed", "canceled": "canceled"},
    attributes=("ItsmProcess", "ItsmState", "ItsmGroup", "ItsmParent"),
    description="A manual fulfillment task for a group.",
)

PROCESSES = (REQUEST, ITEM, TASK)
