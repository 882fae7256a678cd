"""The secure profile's session, against a stack of its own started with CLICKLIB_SECURE=1 (see
the Makefile): `make test` runs the refusals here, `make test-full` all of these tests and the
pipeline's exactness tests."""

from __future__ import annotations

import pytest

from clicklib.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def secure_profile(settings: Settings) -> None:
    assert settings.secure, "tests/secure run against the secure profile: `make test` starts it with CLICKLIB_SECURE=1"
