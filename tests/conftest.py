"""What every test that needs the real stack shares: the settings and the stack itself,
brought up once per session (or reused if running), and a pipeline in a namespace of its own.

Tests isolate themselves by unique topic, table and keyspace names (CLICKLIB_NAMESPACE).
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from clicklib import stack
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings, get_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def live_stack(settings: Settings):
    already_up = all(row.healthy for row in stack.status(settings))
    if not already_up:
        stack.up(settings, on_event=lambda name, event, detail: print(f"[stack] {name}: {event} {detail}"))
    yield settings
    # `make test` runs this session under CLICKLIB_NAMESPACE (test_): whatever a test left in it
    # goes before the stack does. The default namespace is never purged.
    if settings.namespace:
        with Pipeline(settings) as pipeline:
            pipeline.down(purge=True)
    if not already_up:
        stack.down(settings)


@pytest.fixture
def namespaced_pipeline(live_stack: Settings):
    """A pipeline in a namespace of its own, purged afterwards (nothing is set up yet)."""
    with Pipeline(dataclasses.replace(live_stack, namespace=f"t{uuid.uuid4().hex[:8]}_")) as pipeline:
        yield pipeline
        pipeline.down(purge=True)


@pytest.fixture
def running_pipeline(live_stack: Settings):
    """A pipeline set up in a namespace of its own, purged afterwards."""
    with Pipeline(dataclasses.replace(live_stack, namespace=f"r{uuid.uuid4().hex[:8]}_")) as pipeline:
        pipeline.up()
        yield pipeline
        pipeline.down(purge=True)
