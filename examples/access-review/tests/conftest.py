"""The package's tests run on itsmflow's testing kit: the `itsm` fixture is a worker with every
installed process (this one through its entry point) on a time-skipping server of the test's own."""

pytest_plugins = ["itsmflow.testing.plugin"]
