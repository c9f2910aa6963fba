"""The access-review process, declared (see itsmflow.Process): registered under the entry point
group `itsmflow.processes` by this package's pyproject.toml."""

from itsmflow import Action, Process

HERE = "access_review"

ACCESS_REVIEW = Process(
    name="access-review", prefix="ARV", workflows=(f"{HERE}.workflow:AccessRecertificationWorkflow",),
    input=f"{HERE}.models:AccessReviewInput", status=f"{HERE}.models:AccessReviewStatus", people=("owner",),
    actions=(
        Action("attest", "attest", f"{HERE}.models:Attestation", who="the grantee's manager", one_click=True,
               help="Keep (decision=keep) or revoke (decision=revoke) one grant (grant=its key, as the "
                    "notification lists it); a revocation is written to the CMDB."),
    ),
    states=("attesting", "escalated", "closed", "incomplete"),
    final={"closed": "complete", "incomplete": "incomplete"},
    attributes=("ItsmProcess", "ItsmState", "ItsmRequester", "ItsmOutcome", "ItsmResolvedAt"),
    templates=f"{HERE}:templates", show=f"{HERE}.models:show_review",
    description="Quarterly access recertification: managers keep or revoke every grant the CMDB records.",
)
