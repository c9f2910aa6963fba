"""The application layer between the front ends (the CLI, the coming HTTP service) and
Temporal: start, act, show, list, history, audit and reports. `generic` serves any declared
process; `change_ops`, `incident_ops`, `problem_ops` and `request_ops` (with their `*_submit`
builders) are the built-ins' richer starts; `ops` is what they share; `audit*`, `kpi*`,
`timeline`, `graph` and `mermaid` read and report. The front ends reach Temporal only through
here. Importing the package loads nothing (the lean `runs show` path imports `lean` alone)."""
