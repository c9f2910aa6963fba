"""Definitions registered by packages (entry point group `itsmflow.definitions`) load beside
the built-ins and files, under the same no-shadowing rule (issue 15)."""

from __future__ import annotations

from importlib.metadata import EntryPoint

from definitions import registry


def test_a_package_s_definitions_load_and_one_that_shadows_is_refused(monkeypatch):
    entry = EntryPoint(name="globex", value="tests.kit.clashing:DEFINITIONS", group=registry.DEFINITIONS_GROUP)
    real = __import__("importlib.metadata", fromlist=["entry_points"]).entry_points

    def entry_points(group=None, **kwargs):
        return [entry] if group == registry.DEFINITIONS_GROUP else real(group=group, **kwargs)

    monkeypatch.setattr("importlib.metadata.entry_points", entry_points)
    loaded = registry.load()
    assert loaded.definitions["globex"].kind == "organisation"
    assert loaded.problems == ["entry point 'globex' (tests.kit.clashing:DEFINITIONS): defines 'acme-incident', "
                               "which is already built in"]
