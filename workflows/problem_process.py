"""The problem process, declared (see itsmflow.process)."""

from itsmflow.process import Action, Process

MODELS, SHARED = "workflows.problem_models", "workflows.models"
WORKERS = "problem managers or the CI's owning group"

PROBLEM = Process(
    name="problem", prefix="PRB", workflows=("workflows.problem:ProblemWorkflow",),
    input=f"{MODELS}:ProblemInput", status=f"{MODELS}:ProblemStatus", people=("opened_by",),
    actions=(
        Action("investigate", "investigate", f"{SHARED}:ActorInput", who=WORKERS, one_click=True,
               help="Start investigating (problem managers or the CI's owners)."),
        Action("link", "link", f"{MODELS}:LinkInput", who=WORKERS, help="Link an incident to the problem."),
        Action("root-cause", "root_cause", f"{MODELS}:RootCauseInput", who=WORKERS, help="Record the root cause."),
        Action("known-error", "known_error", f"{MODELS}:KnownErrorInput", who=WORKERS,
               help="Record a known error: the workaround new incidents on the CI show."),
        Action("link-change", "link_change", f"{MODELS}:ChangeLinkInput", who=WORKERS,
               help="Link a change raised to fix it (itsm change submit --problem does this)."),
        Action("change-not-started", "change_not_started", f"{MODELS}:ChangeLinkInput", who="whoever linked the change",
               help="Undo the link of a change that did not start."),
        Action("resolve", "resolve", f"{SHARED}:ResolveInput", who=WORKERS,
               help="Resolve: the known error retires, the CI is free for a new problem."),
        Action("close", "close", f"{SHARED}:ReasonInput", who="problem managers", one_click=True,
               help="Close a resolved problem (problem managers)."),
        Action("cancel", "cancel", f"{SHARED}:ReasonInput", who="problem managers",
               help="Cancel an open problem (problem managers)."),
    ),
    signals=("incident_occurred", "change_closed"),
    states=("new", "investigating", "known_error", "resolved", "closed", "canceled"),
    final={"closed": "resolved", "canceled": "canceled"},
    attributes=("ItsmProcess", "ItsmState", "ItsmRequester", "ItsmGroup", "ItsmCI", "ItsmOutcome", "ItsmResolvedAt"),
    definitions={"problem-policy": "definitions.problem:ProblemPolicy"},
    graph="itsmflow.app.graph:problem_graph",
    start_attributes="workflows.problem_models:start_attributes", show="cli.problem:format_problem",
    description="Problem management: root causes behind recurring incidents, known errors, fixes by change.",
)
