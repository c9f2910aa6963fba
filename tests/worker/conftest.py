"""Fixtures of the worker tests: the users' keys for ITSM_AUTH."""

from __future__ import annotations

import pytest

from tests.worker.auth_helpers import make_keys


@pytest.fixture(scope="module")
def keys():
    return make_keys()
