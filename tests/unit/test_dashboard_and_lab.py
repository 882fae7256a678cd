"""The dashboard's pure parts (its JSON cells, a part that fails, its HTTP rules) and the lab's
command line and kernel; the servers against the stack are tested in tests/integration."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from aiohttp.test_utils import TestClient, TestServer

from clicklib import dashboard, lab
from clicklib.exceptions import KafkaError
from clicklib.settings import Settings


def test_cells_become_json_timestamps_in_utc_and_gaps_null():
    frame = pd.DataFrame(
        {
            "when": [pd.Timestamp("2026-11-30 12:00:05", tz="UTC"), pd.NaT],
            "naive": [datetime(2026, 11, 30, 12, 0, 5), datetime(2026, 11, 30, 13, 0)],
            "count": np.array([3, 4], dtype="int64"),
            "rate": [0.5, math.nan],
            "flag": [True, False],
        }
    )
    rows = dashboard.rows(frame)
    assert rows[0] == {
        "when": "2026-11-30T12:00:05Z",
        "naive": "2026-11-30T12:00:05Z",
        "count": 3,
        "rate": 0.5,
        "flag": True,
    }
    assert rows[1]["when"] is None and rows[1]["rate"] is None
    assert json.loads(json.dumps(rows)) == rows  # plain JSON, no numpy left
    assert type(rows[0]["count"]) is int and dashboard._json_value(np.float64(math.nan)) is None
    assert dashboard._json_value(math.inf) is None and dashboard._json_value(date(2026, 1, 2)) == "2026-01-02"
    aware = dashboard.rows(pd.DataFrame({"t": [pd.Timestamp("2026-11-30 13:00", tz="Europe/Paris")]}))
    assert aware[0]["t"] == "2026-11-30T12:00:00Z"


def test_a_part_that_fails_says_why_in_one_line_and_others_still_read():
    def down():
        raise KafkaError("kafka at 127.0.0.1:9092 does not answer\nsecond line")

    def broken():
        raise ZeroDivisionError("division by zero")

    assert dashboard._part(lambda: {"rows": [1]}) == {"ok": True, "rows": [1]}
    assert dashboard._part(down) == {"ok": False, "error": "kafka at 127.0.0.1:9092 does not answer"}
    assert dashboard._part(broken) == {"ok": False, "error": "ZeroDivisionError: division by zero"}


def _ask(
    method: str, path: str, host: str | None = None, latest: dict | None = None, headers: dict | None = None
) -> tuple[int, str]:
    readings = dashboard.Readings(pipeline=None, every=2)  # not started: no pipeline is read
    readings.latest = latest

    async def go() -> tuple[int, str]:
        async with TestClient(TestServer(dashboard.make_app(readings))) as client:
            answer = await client.request(method, path, headers={**({"Host": host} if host else {}), **(headers or {})})
            return answer.status, await answer.text()

    return asyncio.run(go())


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "10.0.0.5:8866", "localhost.evil:8866"])
def test_a_host_that_is_not_this_machine_is_refused(host):
    status, text = _ask("GET", "/api/reading", host)
    assert status == 403 and host.split(":")[0] in text


def test_another_sites_page_may_not_read_it():
    assert _ask("GET", "/api/reading", headers={"Origin": "http://evil.example"})[0] == 403
    assert _ask("GET", "/api/reading", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert _ask("GET", "/api/reading", headers={"Sec-Fetch-Site": "same-origin"})[0] == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_it_only_reads(method):
    assert _ask(method, "/api/reading")[0] == 405


def test_it_serves_its_page_and_the_newest_reading():
    status, page = _ask("GET", "/", "localhost:8866")
    assert status == 200 and 'src="/dashboard.js"' in page
    assert _ask("GET", "/dashboard.js", "127.0.0.1:8866")[0] == 200
    assert json.loads(_ask("GET", "/api/reading")[1]) == {"pending": True, "every": 2}
    assert json.loads(_ask("GET", "/api/reading", latest={"taken_at": 1.0})[1]) == {"taken_at": 1.0}
    assert _ask("GET", "/../pyproject.toml")[0] == 404


def test_the_lab_listens_on_loopback_on_its_port_and_keeps_the_token_off_the_command_line(tmp_path):
    settings = Settings(home=tmp_path, lab_port=18888)
    argv = lab.command(settings, tmp_path, tmp_path / "lab.json")
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.port=18888" in argv and "--ServerApp.port_retries=0" in argv
    assert f"--ServerApp.root_dir={tmp_path}" in argv
    assert f"--config={tmp_path / 'lab.json'}" in argv
    assert not any("token" in arg.lower() for arg in argv)
    assert not any("allow_origin" in arg or "disable_check_xsrf" in arg for arg in argv)


def test_the_lab_kernel_is_this_environment(tmp_path):
    data = lab.kernel_path(Settings(home=tmp_path))
    spec = json.loads((data / "kernels" / lab.KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][:3] == [sys.executable, "-m", "ipykernel_launcher"]
    assert spec["display_name"] == lab.KERNEL_DISPLAY_NAME
