"""Problem policy: when recurring incidents on one CI suggest a problem, who manages
problems, and who learns of a new known error."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from definitions.base import Definition, Duration
from definitions.org import Organisation


class ProblemPolicy(Definition):
    kind: Literal["problem-policy"] = "problem-policy"
    organisation: str
    suggest_after: int = Field(default=3, ge=2, description="incidents on one CI within the window that open a problem")
    suggest_window: Duration = timedelta(days=7)
    manager_group: str = Field(description="may close and cancel problems; works every problem with the CI's owners")
    known_error_groups: list[str] = Field(
        default=[], description="told of every new known error (the people who meet the incidents)")
    link_limit: int = Field(
        default=100, ge=1, description="incidents linked to one problem automatically; later ones still show it, "
                                       "recorded in the CMDB only, so the problem's history stays bounded")

    def reference_problems(self, org: Organisation) -> list[str]:
        groups = {g.name for g in org.groups}
        used = [("manager_group", self.manager_group), *(("known_error_groups", g) for g in self.known_error_groups)]
        return [f"{where}: unknown group {name!r}" for where, name in used if name not in groups]
