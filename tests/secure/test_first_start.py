"""A secure stack's first start, watched from outside (tests/secure/conftest.py): its Cassandra
never accepts the default superuser's well-known password, and no password shows on a command
line or in an environment, from before the first process starts until the stack is up."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.secure.conftest import Watcher


def test_the_first_start_never_accepted_the_default_password_nor_showed_a_password(
    first_start: Watcher | None, live_stack
):
    if first_start is None:
        pytest.skip(
            "the secure stack's home was started before: no first start to watch (`make secure` makes a fresh one)"
        )
    assert first_start.accepted == 0, f"cassandra/cassandra was accepted {first_start.accepted} times"
    # The watcher reached the node while it answered CQL: its refusals are the node's.
    assert first_start.refused > 0 and first_start.samples > 100, (first_start.refused, first_start.samples)
    assert not first_start.shown, f"a password was on a command line or in an environment: {first_start.shown}"
