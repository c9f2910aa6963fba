"""Definitions: one resolution order (built-ins, then files, none shadowing another), hard
limits on what a file may be, and read commands that survive one broken file while the
worker refuses to start with it (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from definitions import acme, registry


def itsm(folder, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ITSM_DEFINITIONS_DIR": str(folder), "TEMPORAL_ADDRESS": "127.0.0.1:1", "ITSM_TIMEOUT": "1"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def write(folder, name: str, data: dict) -> None:
    (folder / name).write_text(json.dumps(data))


def _globex():
    org = registry.dump(acme.ORGANISATION) | {"name": "globex", "description": "a file's organisation"}
    policy = registry.dump(acme.DEMO_CHANGE_POLICY) | {"name": "globex-change", "organisation": "globex"}
    return org, policy


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ITSM_DEFINITIONS_DIR", str(tmp_path))
    return tmp_path


def test_an_organisation_file_and_a_policy_that_names_it_load(folder):
    """It once recursed without end: so an organisation in files could not get its keys."""
    org, policy = _globex()
    write(folder, "globex.json", org)
    write(folder, "globex-change.json", policy)
    assert registry.get("globex-change").organisation == "globex"
    registry.check_all()
    shown = itsm(folder, "definitions", "show", "globex-change")
    assert shown.returncode == 0 and json.loads(shown.stdout)["organisation"] == "globex"


def test_a_file_may_not_shadow_a_built_in(folder):
    shadow = registry.dump(acme.ORGANISATION) | {"description": "mine"}
    write(folder, "acme.json", shadow)
    problem = f"{folder / 'acme.json'}: defines 'acme', which is already built in"
    assert registry.load().problems == [problem]
    assert registry.get("acme").description == acme.ORGANISATION.description  # list, show and worker agree
    with pytest.raises(registry.DefinitionError) as refused:
        registry.check_all()
    assert refused.value.problems == [problem]
    listed = itsm(folder, "definitions", "list")
    assert listed.returncode == 0 and "acme " in listed.stdout
    assert listed.stderr == f"itsm: skipped: {problem}\n"
    worker = itsm(folder, "worker")
    assert (worker.returncode, worker.stderr) == (2, f"itsm: the worker needs every definition: {problem}\n")


def test_two_files_may_not_define_one_name(folder):
    org, _ = _globex()
    write(folder, "a.json", org)
    write(folder, "b.json", org)
    assert registry.load().problems == [f"{folder / 'b.json'}: defines 'globex', as {folder / 'a.json'} does"]


def test_read_commands_stay_usable_beside_a_broken_file(folder):
    (folder / "broken.json").write_text("{not json")
    org, policy = _globex()
    write(folder, "globex.json", org)
    assert registry.get("globex").name == "globex"
    assert itsm(folder, "definitions", "show", "acme-change").returncode == 0
    assert itsm(folder, "definitions", "show", "globex").returncode == 0
    unknown = itsm(folder, "definitions", "show", "nope")
    assert unknown.returncode == 2 and "1 problem(s) in definition files, first: " in unknown.stderr
    assert "broken.json: not valid JSON" in unknown.stderr


def test_a_symlink_to_dev_zero_is_refused_not_read(folder):
    (folder / "zero.json").symlink_to("/dev/zero")
    assert registry.load().problems == [f"{folder / 'zero.json'}: not a regular file"]
    checked = itsm(folder, "definitions", "validate", str(folder / "zero.json"))
    assert (checked.returncode, checked.stderr) == (2, f"{folder / 'zero.json'}: not a regular file\n")


def test_a_file_over_the_size_cap_is_refused(folder):
    (folder / "big.json").write_text('{"kind": "organisation", "description": "' + "x" * 1_000_001 + '"}')
    assert registry.load().problems == [f"{folder / 'big.json'}: larger than 1,000,000 bytes"]


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_nesting_is_a_clear_error_with_exit_2(folder, depth):
    (folder / "deep.json").write_text('{"kind": "organisation", "x": ' + "[" * depth + "]" * depth + "}")
    checked = itsm(folder, "definitions", "validate", str(folder / "deep.json"))
    assert (checked.returncode, checked.stderr) == (2, f"{folder / 'deep.json'}: nested deeper than 32 levels\n")


def test_a_missing_definitions_folder_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("ITSM_DEFINITIONS_DIR", str(missing))
    assert registry.load().problems == [f"ITSM_DEFINITIONS_DIR {missing} is not a folder"]
    worker = itsm(missing, "worker")
    assert worker.returncode == 2 and f"ITSM_DEFINITIONS_DIR {missing} is not a folder" in worker.stderr


def test_an_unknown_policy_lists_the_known_ones(folder):
    submitted = itsm(folder, "change", "submit", "--title", "t", "--ci", "web-01", "--start",
                     "2030-01-01T22:00+00:00", "--end", "2030-01-01T23:00+00:00", "--policy", "nope", "--as", "alice")
    assert (submitted.returncode, submitted.stderr) == (
        2, "itsm: unknown change-policy 'nope' (known: acme-change, acme-demo)\n")
