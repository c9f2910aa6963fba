"""A person's manager (definitions/org.py `Person.manager`): a known person other than
themselves, and a chain of managers ends (acme: grace heads it)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from definitions import acme
from definitions.org import Group, Organisation, Person


def organisation(*people: tuple[str, str | None]) -> Organisation:
    return Organisation(name="org", version=1, people=[Person(username=u, name=u, email=f"{u}@example.com",
                                                              manager=m) for u, m in people],
                        groups=[Group(name="all", members=[u for u, _ in people])])


def test_acme_s_managers_lead_up_to_grace():
    org = acme.ORGANISATION
    chains = {}
    for person in org.people:
        chain, current = [], person.username
        while (current := org.manager_of(current)) is not None:
            chain.append(current)
        chains[person.username] = chain
    assert chains == {"alice": ["carol", "grace"], "bob": ["grace"], "carol": ["grace"], "dave": ["bob", "grace"],
                      "erin": ["bob", "grace"], "frank": ["dave", "bob", "grace"], "grace": []}
    assert org.manager_of("nobody") is None


@pytest.mark.parametrize(("people", "problem"), [
    ((("alice", "zed"),), "person 'alice': unknown manager 'zed'"),
    ((("alice", "alice"),), "person 'alice' is their own manager"),
    ((("alice", "bob"), ("bob", "carol"), ("carol", "bob")),
     "person 'bob': managers go round in a circle (bob -> carol -> bob)"),
])
def test_a_manager_is_someone_else_the_organisation_knows(people, problem):
    with pytest.raises(ValidationError) as refused:
        organisation(*people)
    assert refused.value.errors()[0]["msg"] == f"Value error, {problem}"
