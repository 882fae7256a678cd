"""The Cassandra client waits for the driver to find a restarted node again, and no longer."""

from __future__ import annotations

import pytest
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionShutdown

from clicklib.cassandra import CassandraClient
from clicklib.exceptions import CassandraError
from clicklib.settings import Settings


class Session:
    """Stands in for the driver's session only: what it answers is scripted."""

    def __init__(self, answers: list) -> None:
        self.answers = answers
        self.calls = 0

    def execute(self, *args, **kwargs):
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_with(session: Session, timeout: float = 5.0) -> CassandraClient:
    client = CassandraClient(Settings(request_timeout=timeout))
    client._session = session
    return client


def test_a_request_with_no_node_to_go_to_waits_for_the_driver_to_find_one():
    nobody = NoHostAvailable("Unable to complete the operation against any hosts", {})
    session = Session([nobody, nobody, "done"])
    assert client_with(session).execute("SELECT 1") == "done"
    assert session.calls == 3


def test_a_connection_the_restarted_node_closed_is_waited_out():
    # What a session made before `stack down` and `stack up` meets on its first request after.
    closed = NoHostAvailable(
        "Unable to complete the operation against any hosts",
        {"127.0.0.1:9042": ConnectionShutdown("Connection to 127.0.0.1:9042 is defunct")},
    )
    session = Session([closed, closed, "done"])
    assert client_with(session).execute("SELECT 1") == "done"
    assert session.calls == 3


def test_a_node_that_refused_is_reported_at_once():
    refused = NoHostAvailable("Unable to complete the operation", {"127.0.0.1:9042": ConnectionError("refused")})
    session = Session([refused, "never reached"])
    with pytest.raises(CassandraError, match="refused"):
        client_with(session).execute("SELECT 1")
    assert session.calls == 1


def test_waiting_for_a_node_ends_at_the_request_timeout():
    nobody = NoHostAvailable("Unable to complete the operation against any hosts", {})
    session = Session([nobody] * 100)
    with pytest.raises(CassandraError):
        client_with(session, timeout=1.0).execute("SELECT 1")
    assert 2 <= session.calls <= 5
