"""The Parquet lake: where the lake job (``ksql/19_lake.sql``) writes the clean events, read
here with pyarrow, without Spark (``clicklib.batch`` reads it with Spark).

Layout: ``<lake_url>/<namespace>clean_events/day=YYYY-MM-DD/hour=HH/part-*``. Flink writes into
hidden files (their names start with a dot) and renames them when a checkpoint completes, so
a reader sees only committed events; an hour's folder gets an empty ``_SUCCESS`` file once
the job's watermark has passed the hour's end (at the checkpoint after that).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from clicklib.exceptions import LakeError
from clicklib.settings import Settings

TABLE = "clean_events"
SUCCESS_FILE = "_SUCCESS"
# The columns of the Parquet files as ksql/19_lake.sql writes them; day and hour are the folders.
COLUMNS = pa.schema(
    [
        ("event_id", pa.string()),
        ("date", pa.int64()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("event", pa.string()),
        ("page_type", pa.string()),
        ("current_url", pa.string()),
        ("referrer", pa.string()),
        ("partner_id", pa.string()),
        ("partner_name", pa.string()),
        ("init_session", pa.bool_()),
        ("user_agent", pa.string()),
        ("ip", pa.string()),
        ("city", pa.string()),
        ("country", pa.string()),
        ("language", pa.string()),
        ("status", pa.int64()),
    ]
)
PARTITIONS = pa.schema([("day", pa.string()), ("hour", pa.string())])


def table_url(settings: Settings, flink: bool = False) -> str:
    """The clean events' folder of the settings' namespace, as clients (or Flink) reach it."""
    base = settings.flink_lake_url if flink else settings.lake_url
    return f"{base}/{settings.namespace}{TABLE}"


@dataclass(frozen=True)
class Partition:
    """One hour's folder of the lake."""

    day: str
    hour: str
    files: int
    bytes: int
    finished: bool  # it holds the _SUCCESS file


def filesystem(settings: Settings) -> tuple[pafs.FileSystem, str]:
    """The lake's filesystem and the table's path in it (S3 with the lake's keys, if any)."""
    url = urlparse(table_url(settings))
    if url.scheme == "file":
        return pafs.LocalFileSystem(), unquote(url.path)
    options: dict[str, object] = {}
    if settings.lake_s3_access_key:
        options.update(access_key=settings.lake_s3_access_key, secret_key=settings.lake_s3_secret_key)
    if settings.lake_s3_endpoint:
        endpoint = urlparse(settings.lake_s3_endpoint)
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme)
    return pafs.S3FileSystem(**options), f"{url.netloc}{url.path}"


def exists(settings: Settings) -> bool:
    fs, path = filesystem(settings)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def partitions(settings: Settings) -> list[Partition]:
    """The table's hour folders, oldest first, with their committed files."""
    fs, path = locate(settings)
    found: dict[tuple[str, str], dict[str, int | bool]] = {}
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(path) :].strip("/").split("/")
        if len(relative) != 3 or not relative[0].startswith("day=") or not relative[1].startswith("hour="):
            continue
        key = (relative[0].removeprefix("day="), relative[1].removeprefix("hour="))
        entry = found.setdefault(key, {"files": 0, "bytes": 0, "finished": False})
        name = relative[2]
        if name == SUCCESS_FILE:
            entry["finished"] = True
        elif not name.startswith((".", "_")):
            entry["files"] = int(entry["files"]) + 1
            entry["bytes"] = int(entry["bytes"]) + (info.size or 0)
    return [
        Partition(day, hour, int(entry["files"]), int(entry["bytes"]), bool(entry["finished"]))
        for (day, hour), entry in sorted(found.items())
    ]


def dataset(settings: Settings) -> ds.Dataset:
    """The committed files as one pyarrow dataset, with ``day`` and ``hour`` from the folders."""
    fs, path = locate(settings)
    try:
        return ds.dataset(
            path,
            filesystem=fs,
            format="parquet",
            schema=COLUMNS.append(PARTITIONS.field("day")).append(PARTITIONS.field("hour")),
            partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
            # Flink's unfinished files start with a dot, the success markers with an underscore.
            ignore_prefixes=[".", "_"],
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise LakeError(f"cannot read the lake at {table_url(settings)}: {exc}") from None


def read(settings: Settings, columns: list[str] | None = None, days: list[str] | None = None) -> pd.DataFrame:
    """The clean events of the lake as pandas, as written (a replay older than the job's
    deduplication memory is there twice: see :func:`clicklib.batch.events`)."""
    data = dataset(settings)
    where = ds.field("day").isin(days) if days else None
    try:
        return data.to_table(columns=columns, filter=where).to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise LakeError(f"cannot read the lake at {table_url(settings)}: {exc}") from None


def delete(settings: Settings) -> None:
    """Delete the namespace's clean events from the lake (``pipeline down --purge``)."""
    fs, path = filesystem(settings)
    try:
        if fs.get_file_info(path).type == pafs.FileType.Directory:
            fs.delete_dir(path)
    except OSError as exc:
        raise LakeError(
            f"cannot delete the lake's events at {table_url(settings)}: {exc}; delete the folder as the user "
            "that wrote it (the Flink containers' user under docker compose, see docker-compose.yml)"
        ) from None


def locate(settings: Settings) -> tuple[pafs.FileSystem, str]:
    """The table's filesystem and path; an error that says what to do when it does not exist."""
    fs, path = filesystem(settings)
    try:
        kind = fs.get_file_info(path).type
    except OSError as exc:
        raise LakeError(f"cannot reach the lake at {table_url(settings)}: {exc}") from None
    if kind != pafs.FileType.Directory:
        raise LakeError(
            f"the lake has no clean events at {table_url(settings)} yet: the lake job writes them at each "
            "checkpoint once the pipeline is up (clicklib pipeline status shows the job; CLICKLIB_LAKE_URL "
            "says where the lake is)"
        )
    return fs, path
