"""The definition types a process's own models name (pydantic; no temporalio):

- `Organisation` (and its `Person`, `Group`): the directory a run snapshots at its start and
  authorizes against; a start input field typed as it is filled in by the kit with the
  organisation the worker runs on (ITSM_ORG). `Person.manager` names a person's manager
  (`Organisation.manager_of`);
- `Duration`: a timedelta spelled as definitions spell it (`30m`, `7d`), in and out;
- `Title`: a title field that a run holds on one line, whatever a client sends;
- `format_duration`: that spelling, for text."""

from definitions.base import Duration, format_duration
from definitions.org import Group, Organisation, Person
from definitions.text import Title

__all__ = ["Duration", "Group", "Organisation", "Person", "Title", "format_duration"]
