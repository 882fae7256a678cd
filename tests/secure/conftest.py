"""The secure profile's session: `make test` runs these tests, with the pipeline's exactness
tests, against a stack of their own started with CLICKLIB_SECURE=1 (see the Makefile)."""

from __future__ import annotations

import pytest

from clicklib.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def secure_profile(settings: Settings) -> None:
    assert settings.secure, "tests/secure run against the secure profile: `make test` starts it with CLICKLIB_SECURE=1"
