"""A process's package ships its own notification templates (its declaration's `templates`,
"package:folder"), found under the process's name; the built-in folders come first, so no
package shadows one of theirs, and a process without templates has no folder."""

from __future__ import annotations

import pytest
from jinja2 import TemplateNotFound

from activities.notify import TEMPLATES, render
from itsmflow import Process


def test_an_installed_package_s_templates_render_under_its_process_s_name():
    subject, text, html = render("access-review/attest_requested", {
        "review": {"id": "ARV-20261201-AB12", "title": "Q4", "owner": "grace", "owner_group": None},
        "due": "2026-12-08 10:00:00Z", "closes": "2026-12-11 10:00:00Z", "attester": "carol",
        "grants": [{"key": "RITM-1:grant", "label": "alice: vpn (30 days)", "granted_at": "2026-11-24"}]})
    assert subject == "[ARV-20261201-AB12] Access review: attest 1 grant(s) by 2026-12-08"
    assert "  RITM-1:grant  alice: vpn (30 days), granted 2026-11-24\n" in text and "RITM-1:grant" in html


@pytest.mark.parametrize("name", ["review/anything.txt.j2", "access-review/../notify.py", "access-review/",
                                  "nothing.txt.j2"])
def test_a_template_no_process_ships_is_not_found(name):
    with pytest.raises(TemplateNotFound):
        TEMPLATES.get_template(name)


def test_the_built_in_folders_come_first():
    assert TEMPLATES.get_template("problem/problem_opened.txt.j2").filename.endswith(
        "activities/templates/problem/problem_opened.txt.j2")


def test_templates_are_declared_as_package_and_folder():
    declared = Process(name="odd", prefix="ODD", workflows=("m:W",), input="m:I", status="m:S", templates="templates")
    assert declared.problems() == ["process 'odd': templates 'templates' must be package:folder (say "
                                   "'reviews:templates')"]
    assert Process(name="odd", prefix="ODD", workflows=("m:W",), input="m:I", status="m:S",
                   templates="reviews:templates/mail").problems() == []
