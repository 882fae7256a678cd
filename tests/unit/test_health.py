"""The stack's probes on a secure home that has no logins yet: each says so instead of raising,
so `stack status` and the test session's first look at the stack work before the first `up`."""

import pytest

from clicklib.settings import Settings
from clicklib.stack import health


@pytest.mark.parametrize("probe", [health.flink, health.sql_gateway, health.connect, health.cassandra])
def test_a_probe_of_a_secure_stack_without_logins_is_unhealthy_and_says_why(tmp_path, probe):
    settings = Settings(home=tmp_path, secure=True, probe_timeout=1.0)
    found = probe(settings)
    assert not found.healthy
    assert "has no credentials yet" in found.detail
