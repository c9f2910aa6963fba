"""docker-compose.yml and the Dockerfile stay in step with the code (no Docker engine
runs here, so this is the check CI can do: `docker compose config` where Docker exists)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from workflows.search_attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_order():
    services = COMPOSE["services"]
    assert set(services) == {"postgresql", "temporal-schema", "temporal", "temporal-init", "temporal-ui", "worker"}
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["temporal-init"]["condition"] == "service_completed_successfully"
    assert "container_name" not in services["worker"], "a fixed name would prevent --scale worker=N"
    assert services["worker"]["build"] == "."
    assert services["worker"]["environment"]["ITSM_DB_URL"].startswith("postgresql://")
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "image" in service:
            assert re.search(r":\d", service["image"]), f"{name}: pin the image version"


def test_schema_job_sets_up_both_temporal_databases_and_the_cmdb():
    script = COMPOSE["services"]["temporal-schema"]["command"][0]
    for needle in ("--db temporal setup-schema", "--db temporal_visibility update-schema", "temporal temporal_visibility itsm"):
        assert needle in script


def test_search_attributes_match_the_code():
    script = COMPOSE["services"]["temporal-init"]["command"][0]
    declared = dict(re.findall(r"(Itsm\w+):(\w+)", script))
    assert declared == SEARCH_ATTRIBUTES


def test_dockerfile_copies_every_package_and_installs_postgres_extra():
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for package in (p for p in packages if "." not in p):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "'.[postgres]'" in dockerfile and 'CMD ["itsm", "worker"]' in dockerfile


def test_packaging_lists_every_package_and_template():
    """What a non-editable install (the Docker image) gets: every package folder is listed
    (setuptools does not add subpackages of an explicit list) and every template matches
    the package-data globs."""
    from fnmatch import fnmatch

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(tool["packages"])
    tops = {p.split(".")[0] for p in packages}
    found = {".".join(init.parent.relative_to(ROOT).parts) for top in tops for init in (ROOT / top).rglob("__init__.py")}
    assert found == packages
    for top in tops:
        for template in (ROOT / top).rglob("*.j2"):
            relative = str(template.relative_to(ROOT / top))
            assert any(fnmatch(relative, glob) and relative.count("/") == glob.count("/")
                       for glob in tool["package-data"].get(top, [])), relative
