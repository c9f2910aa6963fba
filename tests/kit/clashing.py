"""Declarations that must not load (tests/kit/test_loading.py)."""

from itsmflow import Process

SAME_PREFIX = Process(name="audit-review", prefix="CHG", workflows=("tests.kit.clashing:Nothing",),
                      input="tests.kit.clashing:Nothing", status="tests.kit.clashing:Nothing")
BAD_PREFIX = Process(name="odd", prefix="Odd1", workflows=("tests.kit.clashing:Odd",),
                     input="tests.kit.clashing:Nothing", status="tests.kit.clashing:Nothing")
NOT_A_PROCESS = {"name": "dict"}


def _definitions():
    from definitions import acme

    return [acme.ORGANISATION.model_copy(update={"name": "globex"}), acme.INCIDENT_POLICY]


DEFINITIONS = _definitions()
