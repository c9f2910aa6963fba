"""The worker tests' fixtures: keys for ITSM_AUTH, runs terminated afterwards."""

from tests.worker.conftest import keys, tracked  # noqa: F401
