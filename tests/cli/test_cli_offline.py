"""CLI behaviour that needs no server: definitions, usage errors, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from worker.server import free_port


def itsm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                            timeout=60, env={**os.environ, **(env or {})})
    assert "Traceback" not in result.stderr
    return result


def test_validate_reports_every_problem_one_line_each(tmp_path):
    policy = json.loads(itsm("definitions", "show", "acme-demo").stdout)
    policy["version"] = 0
    policy["approvals"]["low"]["levels"][0]["rule"] = "quorum"
    policy["windows"][0]["timezone"] = "Mars/Base"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(policy))
    result = itsm("definitions", "validate", str(bad))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{bad}: version: Input should be greater than or equal to 1",
        f"{bad}: approvals.low.levels.0: level 'change-manager': rule quorum needs a quorum number",
        f"{bad}: windows.0.timezone: unknown timezone 'Mars/Base'",
    ]


def test_validate_checks_names_against_the_organisation(tmp_path):
    policy = json.loads(itsm("definitions", "show", "acme-change").stdout)
    policy["approvals"]["high"]["levels"][1]["group"] = "cabb"
    policy["templates"][0]["cis"] = ["web-99"]
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    result = itsm("definitions", "validate", str(path))
    assert result.returncode == 2
    assert f"{path}: approvals.high: unknown group 'cabb'" in result.stderr.splitlines()
    assert f"{path}: template 'restart-web-server': unknown ci 'web-99'" in result.stderr.splitlines()


def test_valid_toml_definition_validates_and_is_listed(tmp_path):
    (tmp_path / "beta.toml").write_text(
        'kind = "organisation"\nname = "beta"\nversion = 3\n'
        '[[people]]\nusername = "ann"\nname = "Ann"\nemail = "ann@beta.example"\n'
        '[[groups]]\nname = "ops"\nmembers = ["ann"]\n'
    )
    assert itsm("definitions", "validate", str(tmp_path / "beta.toml")).returncode == 0
    listed = json.loads(itsm("definitions", "list", "--json", env={"ITSM_DEFINITIONS_DIR": str(tmp_path)}).stdout)
    assert {"name": "beta", "kind": "organisation", "version": 3, "description": ""} in listed


def test_validate_unreadable_and_malformed_files(tmp_path):
    assert itsm("definitions", "validate", str(tmp_path / "missing.json")).returncode == 2
    (tmp_path / "broken.json").write_text("{not json")
    result = itsm("definitions", "validate", str(tmp_path / "broken.json"))
    assert result.returncode == 2 and "not valid JSON" in result.stderr
    (tmp_path / "kindless.json").write_text("{}")
    assert "kind: must be one of" in itsm("definitions", "validate", str(tmp_path / "kindless.json")).stderr


def test_usage_errors_exit_2_with_one_line():
    for args in (["change", "submit", "--ci", "web-01"], ["change", "--bogus"], ["nope"],
                 ["change", "complete", "CHG-20261124-AAAA", "--outcome", "great", "--as", "bob"]):
        result = itsm(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unreachable_server_exits_1_with_one_line():
    port = free_port()
    result = itsm("change", "show", "CHG-20261124-AAAA", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
                                                              "ITSM_TIMEOUT": "5"})
    assert result.returncode == 1
    assert result.stderr.startswith(f"itsm: cannot reach Temporal at 127.0.0.1:{port}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_definition_and_user():
    assert itsm("definitions", "show", "nope").returncode == 2
    result = itsm("change", "submit", "--title", "t", "--ci", "web-01", "--start", "2030-01-01T22:00Z",
                  "--end", "2030-01-01T23:00Z", "--as", "mallory")
    assert result.returncode == 2 and "unknown user 'mallory'" in result.stderr


def test_auth_keygen_and_bad_key_files(tmp_path):
    made = itsm("auth", "keygen", "alice", "--out", str(tmp_path / "alice.pem"))
    assert made.returncode == 0 and made.stdout.startswith("alice: public_key: ed25519:")
    assert oct((tmp_path / "alice.pem").stat().st_mode & 0o777) == "0o600"
    again = itsm("auth", "keygen", "alice", "--out", str(tmp_path / "alice.pem"))
    assert (again.returncode, again.stderr.strip()) == (2,
                                                        f"itsm: {tmp_path / 'alice.pem'} exists; "
                                                        "remove it first to replace the key")

    (tmp_path / "junk.pem").write_text("not a key")
    (tmp_path / "junk.pem").chmod(0o600)
    shared = tmp_path / "shared.pem"
    shared.write_bytes((tmp_path / "alice.pem").read_bytes())
    shared.chmod(0o644)  # a private key others can read is refused
    for path, message in [(tmp_path / "missing.pem", "cannot read"), (tmp_path / "junk.pem", "not an unencrypted PEM"),
                          (shared, f"ITSM_AUTH_KEY: {shared} is readable by others (chmod 600 {shared})")]:
        result = itsm("change", "show", "CHG-20260101-AAAA", env={"ITSM_AUTH_KEY": str(path)})
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and message in result.stderr

    worker = itsm("worker", env={"ITSM_AUTH": "on", "TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert (worker.returncode, worker.stderr.strip()) == (
        2, "itsm: ITSM_AUTH is on but organisation acme has no public keys")


def test_lean_read_path_leaves_an_encrypted_failure_to_the_full_path():
    """The stdlib path cannot decrypt: a pending activity whose failure is encrypted sends
    `runs show` down the full path (which decodes it) instead of printing "Encoded failure"."""
    import pytest

    from itsmflow.app import lean

    body = {"workflowExecutionInfo": {"execution": {"workflowId": "CHG-20300101-AAAA"}},
            "pendingActivities": [{"activityType": {"name": "notify"}, "attempt": 3,
                                   "lastFailure": {"message": "Encoded failure", "encodedAttributes": {"data": "x"}}}]}
    with pytest.raises(ValueError):
        lean._record("CHG-20300101-AAAA", body)


def test_top_level_help_gives_whole_descriptions():
    shown = itsm("-h")
    commands = shown.stdout.split("Commands:", 1)[1]
    assert shown.returncode == 0 and "..." not in commands
    assert "Keys that prove who approves, acknowledges or requests (ITSM_AUTH)" in " ".join(commands.split())


def test_each_top_level_command_loads_under_its_name_from_its_own_module():
    """cli/main.py's COMMANDS are import paths (click's lazy group): each names the command it
    loads, and `itsm change ...` imports cli/change.py without the other groups' modules."""
    probe = ("import sys, click\n"
             "from cli.main import COMMANDS, itsm\n"
             "context = click.Context(itsm)\n"
             "itsm.get_command(context, 'change')\n"
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('cli.'))))\n"
             "print(all(itsm.get_command(context, name).name == name for name in COMMANDS))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    loaded, named = done.stdout.splitlines()
    assert done.returncode == 0 and named == "True", done.stderr
    assert "cli.change" in loaded.split()
    assert not {"cli.incident", "cli.request", "cli.server_cmd"} & set(loaded.split())


def test_a_long_label_never_runs_into_its_value():
    from types import SimpleNamespace

    from cli.commands import timeline_card

    status = SimpleNamespace(id="INC-20261201-AAAA", title="t", events=[], notices=[], events_omitted=0)
    card = timeline_card(status, [("state", "new"), ("sla response", "0% of 2h")])
    assert "  sla response 0% of 2h" in card.splitlines()


def test_an_action_argument_the_model_refuses_is_one_line_exit_2_and_nothing_sent():
    """`itsm incident note ID ""` said "internal error: ValidationError" with exit 1; it is a
    usage error, found before any connection (the address answers nothing)."""
    nowhere = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    note = itsm("incident", "note", "INC-20261202-AAAA", "", "--as", "dave", env=nowhere)
    assert (note.returncode, note.stdout, note.stderr) == (2, "", "itsm: text: String should have at least 1 "
                                                               "character\n")
    step = itsm("incident", "escalate", "INC-20261202-AAAA", "--to-step", "0", "--as", "dave", env=nowhere)
    assert step.returncode == 2 and "--to-step" in step.stderr


def test_a_bad_release_plan_is_one_line_exit_2_before_any_connection():
    """TEMPORAL_ADDRESS points nowhere: each refusal comes before a connection is tried."""
    base = ["release", "plan", "--title", "Q4 release", "--start", "+1h", "--end", "+3h", "--manager", "carol",
            "--as", "alice", "--policy", "acme-demo"]
    cases = {
        ("--new", "api=Deploy the API"): "itsm: --new 'api=Deploy the API': expected LABEL=TITLE@CI[,CI]\n",
        ("--new", "api=Deploy@web-02", "--after", "api=db"):
            "itsm: the DAG names changes not in the release: db\n",
        ("--new", "a=One@web-01", "--new", "b=Two@web-02", "--after", "a=b", "--after", "b=a"):
            "itsm: the DAG has a cycle among ",
        ("--new", "api=Deploy@nowhere-01",): "itsm: --new api: unknown CI 'nowhere-01'",
        ("--after", "x"): "itsm: --after 'x': expected CHANGE=BEFORE[,BEFORE] (ids or --new labels)\n",
        (): "itsm: a release needs at least one change (--change CHG-… or --new LABEL=TITLE@CI)\n",
    }
    for extra, expected in cases.items():
        done = itsm(*base, *extra, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
        assert done.returncode == 2 and done.stderr.startswith(expected), (extra, done.stderr)
        assert done.stderr.count("\n") == 1
