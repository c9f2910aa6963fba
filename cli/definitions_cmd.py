"""`itsm definitions list|show|validate|graph`."""

from __future__ import annotations

import click

from cli.common import FullHelpGroup, ValidationFailed, emit_json, json_option


@click.group("definitions", cls=FullHelpGroup)
def definitions_group() -> None:
    """Policies and organisations (built-in and from ITSM_DEFINITIONS_DIR)."""


@definitions_group.command("list")
@json_option
def list_cmd(as_json):
    """Every known definition with its kind and version (a broken file is named on stderr)."""
    from cli.main import one_line
    from definitions import registry

    loaded = registry.load()
    for problem in loaded.problems:  # the readable ones are still listed (the worker refuses to start)
        click.echo(f"itsm: skipped: {one_line(problem)}", err=True)
    found = loaded.definitions
    rows = [{"name": d.name, "kind": d.kind, "version": d.version, "description": d.description}
            for d in found.values()]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<16} {row['kind']:<14} v{row['version']:<4} {row['description']}")


@definitions_group.command("show")
@click.argument("name")
def show_cmd(name):
    """The full definition as JSON."""
    from definitions import registry

    try:
        emit_json(registry.dump(registry.get(name)))
    except registry.DefinitionError as err:
        raise ValidationFailed(str(err)) from None


@definitions_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
def validate_cmd(path):
    """Validate a JSON or TOML definition file; every problem on its own line (exit 2)."""
    from definitions import registry

    try:
        definition = registry.load_file(path)
    except registry.DefinitionError as err:
        from cli.main import one_line

        for problem in err.problems:
            click.echo(one_line(problem), err=True)
        raise click.exceptions.Exit(2) from None
    click.echo(f"{path}: valid {definition.kind} {definition.name!r} v{definition.version}")


@definitions_group.command("graph")
@click.argument("name")
@click.argument("item", required=False)
def graph_cmd(name, item):
    """A Mermaid flowchart of a change policy, incident policy or catalog; with ITEM, only that
    catalog item (a bundle with its items)."""
    from definitions import registry
    from itsmflow.app.graph import GraphError, graph, item_hint

    try:
        definition = registry.get(name)
    except registry.DefinitionError as err:
        try:
            hint = item_hint(name, registry.all_definitions())
        except registry.DefinitionError:
            hint = ""
        raise ValidationFailed(f"{err}{hint}") from None
    try:
        click.echo(graph(definition, item), nl=False)
    except GraphError as err:
        raise ValidationFailed(str(err)) from None
