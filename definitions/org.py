"""People, groups and the CMDB seed of an organisation."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from definitions.base import Definition, Model


class Criticality(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Person(Model):
    username: str = Field(pattern=r"^[a-z][a-z0-9._-]*$")
    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    public_key: str | None = Field(
        default=None, pattern=r"^ed25519:[A-Za-z0-9+/]{43}=$",
        description="verifies this person's calls when ITSM_AUTH is on (`itsm auth keygen`)",
    )
    manager: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9._-]*$",
        description="the username of this person's manager, a person of the organisation (who attests their access)",
    )


class Group(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    members: list[str] = Field(min_length=1)
    email: str | None = None


class Service(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    owner_group: str


class ConfigurationItem(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    ci_class: str = "server"
    criticality: Criticality
    owner_group: str
    services: list[str] = []


class Organisation(Definition):
    """Directory and CMDB seed. The directory is what validators authorize against."""

    kind: Literal["organisation"] = "organisation"
    people: list[Person]
    groups: list[Group]
    services: list[Service] = []
    cis: list[ConfigurationItem] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> "Organisation":
        problems: list[str] = []
        users = {p.username for p in self.people}
        groups = {g.name for g in self.groups}
        services = {s.name for s in self.services}
        for kind, names in (
            ("person", [p.username for p in self.people]),
            ("group", [g.name for g in self.groups]),
            ("service", [s.name for s in self.services]),
            ("ci", [c.name for c in self.cis]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    problems.append(f"duplicate {kind} {name!r}")
                seen.add(name)
        problems += self._manager_problems(users)
        for group in self.groups:
            problems += [
                f"group {group.name!r}: unknown member {m!r}" for m in group.members if m not in users
            ]
        for service in self.services:
            if service.owner_group not in groups:
                problems.append(f"service {service.name!r}: unknown owner_group {service.owner_group!r}")
        for ci in self.cis:
            if ci.owner_group not in groups:
                problems.append(f"ci {ci.name!r}: unknown owner_group {ci.owner_group!r}")
            problems += [f"ci {ci.name!r}: unknown service {s!r}" for s in ci.services if s not in services]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _manager_problems(self, users: set[str]) -> list[str]:
        """Every manager is a known person other than themselves, and a chain of managers ends."""
        problems = []
        managers = {p.username: p.manager for p in self.people if p.manager}
        for username, manager in managers.items():
            if manager not in users:
                problems.append(f"person {username!r}: unknown manager {manager!r}")
            elif manager == username:
                problems.append(f"person {username!r} is their own manager")
        for username in managers:
            seen, current = [username], managers.get(username)
            while current in managers and current not in seen:
                seen.append(current)
                current = managers[current]
            if current == username and len(seen) > 1 and username == min(seen):  # each circle once
                circle = " -> ".join([*seen, username])
                problems.append(f"person {username!r}: managers go round in a circle ({circle})")
        return problems

    def person(self, username: str) -> Person | None:
        return next((p for p in self.people if p.username == username), None)

    def manager_of(self, username: str) -> str | None:
        """The manager of a known person, or None (unknown, or nobody above them)."""
        person = self.person(username)
        return person.manager if person else None

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def ci(self, name: str) -> ConfigurationItem | None:
        return next((c for c in self.cis if c.name == name), None)

    def members(self, group_name: str) -> list[str]:
        group = self.group(group_name)
        return list(group.members) if group else []

    def emails(self, usernames: list[str]) -> list[str]:
        return [p.email for u in usernames if (p := self.person(u))]
