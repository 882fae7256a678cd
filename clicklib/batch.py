"""The batch questions, answered by Spark over the Parquet lake (``clicklib.lake``).

The same definitions as the pandas analysis (``clicklib.analysis``), written as Spark DataFrame
code so that they run on a cluster once the data outgrows one machine: the daily funnel,
sessions per day, the top pages and retention cohorts. ``recompute_pageviews`` recomputes one
day of the streaming ``pageviews_per_minute`` table from the lake and lists every row that
differs, a way to check (and with ``repair_pageviews``, to mend) the streaming result.

Spark runs in local mode on this machine unless ``CLICKLIB_SPARK_MASTER`` names a cluster.
Days are UTC days; a session belongs to the day of its first event, a user's cohort to the day
of their first event in the lake.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from clicklib import lake
from clicklib.analysis import FUNNEL_PAGES, FUNNEL_STEPS
from clicklib.cassandra import CassandraClient
from clicklib.exceptions import BatchError
from clicklib.settings import Settings

try:  # the batch extra: pip install 'clicklib[batch]'
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError:  # pragma: no cover - the message below says what to install
    SparkSession = None  # type: ignore[assignment,misc]

# hadoop-aws of the Hadoop that PySpark 4.0 ships, for s3a:// lakes (fetched by Spark from Maven Central).
HADOOP_AWS = "org.apache.hadoop:hadoop-aws:3.4.1"
# Shuffles in local mode: a few partitions per core, not Spark's 200 meant for clusters.
LOCAL_SHUFFLE_PARTITIONS = 8
PAGEVIEW_COLUMNS = ["window_start", "page_type", "window_end", "views", "users"]


LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")


def spark_session(settings: Settings) -> SparkSession:
    """A Spark session for the lake: local mode on 127.0.0.1 unless a cluster is configured,
    times in UTC, no web UI (it would listen on every interface and runs no login)."""
    if SparkSession is None:
        raise BatchError("PySpark is not installed; run pip install 'clicklib[batch]'")
    local = settings.spark_master.startswith("local")
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(f"{settings.namespace}clicklib-batch")
        .config("spark.ui.enabled", "false")
        # No progress bars drawn on stderr (they garble notebook outputs and logs).
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", settings.spark_driver_memory)
        # WARN and above, without the banner Spark prints when it falls back to its own profile.
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}")
    )
    if local:
        # The driver's own ports (block manager, RPC) stay on this machine too; SPARK_LOCAL_IP is
        # what the JVM's launcher reads before any option.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        builder = builder.config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
    if settings.lake_url.startswith("s3a://"):
        builder = builder.config("spark.jars.packages", HADOOP_AWS)
        if settings.lake_s3_endpoint:
            builder = builder.config("spark.hadoop.fs.s3a.endpoint", settings.lake_s3_endpoint).config(
                "spark.hadoop.fs.s3a.path.style.access", "true"
            )
        if settings.lake_s3_access_key:
            builder = builder.config("spark.hadoop.fs.s3a.access.key", settings.lake_s3_access_key).config(
                "spark.hadoop.fs.s3a.secret.key", settings.lake_s3_secret_key
            )
    if settings.java and "JAVA_HOME" not in os.environ:
        os.environ["JAVA_HOME"] = os.path.dirname(os.path.dirname(os.path.realpath(settings.java)))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Py4J and the launcher share no base class
        raise BatchError(
            f"Spark could not start ({settings.spark_master}): {str(exc)[-1500:]}\n"
            "Spark needs Java 17 or newer (java on PATH, JAVA_HOME or CLICKLIB_JAVA) and "
            f"CLICKLIB_SPARK_DRIVER_MEMORY={settings.spark_driver_memory} free"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def lake_schema() -> T.StructType:
    """The lake's columns (lake.COLUMNS, in pyarrow's types) as Spark's, with the folders' day and hour."""
    spark_types = {"string": T.StringType(), "int64": T.LongType(), "bool": T.BooleanType()}
    fields = [T.StructField(f.name, spark_types[str(f.type)]) for f in lake.COLUMNS]
    return T.StructType([*fields, T.StructField("day", T.StringType()), T.StructField("hour", T.StringType())])


def events(spark: SparkSession, settings: Settings, days: list[str] | None = None) -> DataFrame:
    """The lake's clean events, each event_id once (a replay older than the lake job's
    deduplication memory is in the files twice), with ``time`` (a UTC timestamp) added."""
    url = lake.table_url(settings)
    lake.locate(settings)  # an error that says what to do when the lake has no events yet
    frame = spark.read.schema(lake_schema()).option("basePath", url).parquet(url)
    if days:
        frame = frame.where(F.col("day").isin([str(d) for d in days]))
    return frame.dropDuplicates(["event_id"]).withColumn("time", F.timestamp_millis("date"))


def from_pandas(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """Events from a pandas frame with the lake's columns (tests, and data that is not in the lake)."""
    columns = [f.name for f in lake.COLUMNS]
    typed = frame.reindex(columns=columns).astype({"date": "int64", "status": "int64"})
    schema = T.StructType([f for f in lake_schema().fields if f.name in columns])
    rows = typed.astype(object).where(typed.notna(), None).itertuples(index=False, name=None)
    events = spark.createDataFrame(list(rows), schema)
    return events.withColumn("time", F.timestamp_millis("date")).withColumn("day", F.to_date("time").cast("string"))


def _ok() -> Column:
    return F.col("status") < 400


def _orders() -> Column:
    return (F.col("event") == "purchase") & _ok()


def _pageview_of(page_type: str) -> Column:
    return (F.col("event") == "pageview") & _ok() & (F.col("page_type") == page_type)


def session_steps(events: DataFrame) -> DataFrame:
    """One row per session: its day (of its first event) and a flag per funnel step."""
    done = {
        "session": F.lit(True),
        "product": _pageview_of(FUNNEL_PAGES["product"]),
        "cart": _pageview_of(FUNNEL_PAGES["cart"]) | ((F.col("event") == "add_to_cart") & _ok()),
        "checkout": _pageview_of(FUNNEL_PAGES["checkout"]),
        "purchase": _orders(),
    }
    return events.groupBy("session_id").agg(
        F.to_date(F.min("time")).cast("string").alias("day"),
        *[F.max(flag.cast("int")).cast("boolean").alias(step) for step, flag in done.items()],
    )


def daily_funnel(events: DataFrame) -> pd.DataFrame:
    """:func:`clicklib.analysis.funnel` per day: for each day and step, the sessions that did
    it, those that reached it or a later one, and both shares (of the previous step, of all)."""
    steps = session_steps(events)
    furthest = F.greatest(*[F.when(F.col(step), F.lit(i)).otherwise(F.lit(0)) for i, step in enumerate(FUNNEL_STEPS)])
    aggregates = []
    for i, step in enumerate(FUNNEL_STEPS):
        aggregates.append(F.sum(F.col(step).cast("long")).alias(f"did_{i}"))
        aggregates.append(F.sum((furthest >= i).cast("long")).alias(f"reached_{i}"))
    per_day = steps.groupBy("day").agg(*aggregates).orderBy("day").toPandas()
    rows = []
    for record in per_day.to_dict("records"):
        sessions = record["reached_0"]
        for i, step in enumerate(FUNNEL_STEPS):
            reached, previous = record[f"reached_{i}"], record[f"reached_{max(i - 1, 0)}"]
            rows.append(
                {
                    "day": record["day"],
                    "step": step,
                    "did": int(record[f"did_{i}"]),
                    "reached": int(reached),
                    "of_previous": reached / previous if previous else float("nan"),
                    "of_sessions": reached / sessions if sessions else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=["day", "step", "did", "reached", "of_previous", "of_sessions"])


def sessions_per_day(events: DataFrame) -> pd.DataFrame:
    """Per day: sessions (by the day they started), their users and events, the mean duration
    (first to last event) and depth (pageviews), and how many bought something."""
    per_session = events.groupBy("session_id").agg(
        F.first("user_id", ignorenulls=True).alias("user_id"),
        F.min("date").alias("start_ms"),
        F.max("date").alias("end_ms"),
        F.count("*").alias("events"),
        F.sum((F.col("event") == "pageview").cast("long")).alias("depth"),
        F.max(_orders().cast("int")).alias("purchased"),
    )
    per_day = (
        per_session.withColumn("day", F.to_date(F.timestamp_millis("start_ms")).cast("string"))
        .groupBy("day")
        .agg(
            F.count("*").alias("sessions"),
            F.countDistinct("user_id").alias("users"),
            F.sum("events").alias("events"),
            F.avg((F.col("end_ms") - F.col("start_ms")) / 1000.0).alias("mean_duration_s"),
            F.avg("depth").alias("mean_depth"),
            F.sum("purchased").alias("purchase_sessions"),
        )
        .orderBy("day")
    )
    return per_day.toPandas()


def top_pages(events: DataFrame, n: int = 10) -> pd.DataFrame:
    """:func:`clicklib.analysis.top_pages`: the ``n`` most viewed pages with their page type
    (the first in name order, should a URL have several) and sessions."""
    pages = (
        events.where(F.col("event") == "pageview")
        .groupBy("current_url")
        .agg(
            F.min("page_type").alias("page_type"),
            F.count("*").alias("views"),
            F.countDistinct("session_id").alias("sessions"),
        )
        .orderBy(F.desc("views"), F.asc("current_url"))
        .limit(n)
    )
    return pages.toPandas()


def retention(events: DataFrame) -> pd.DataFrame:
    """Retention cohorts: users by the day of their first event (``cohort``), and for each later
    day (``day_number`` 0, 1, ... up to the newest day of the data) how many of them had an event
    that day and their share of the cohort. Days without any returning user count 0."""
    known = events.where(F.col("user_id").isNotNull())
    active = known.select("user_id", F.to_date("time").alias("active_day")).distinct()
    first = active.groupBy("user_id").agg(F.min("active_day").alias("cohort"))
    sizes = first.groupBy("cohort").agg(F.count("*").alias("cohort_users"))
    returning = (
        active.join(first, "user_id")
        .withColumn("day_number", F.datediff("active_day", "cohort"))
        .groupBy("cohort", "day_number")
        .agg(F.count("*").alias("users"))
    )
    last_day = active.agg(F.max("active_day").alias("last_day"))
    grid = sizes.crossJoin(last_day).withColumn(
        "day_number", F.explode(F.sequence(F.lit(0), F.datediff("last_day", "cohort")))
    )
    cohorts = (
        grid.join(returning, ["cohort", "day_number"], "left")
        .select(
            F.col("cohort").cast("string").alias("cohort"),
            "day_number",
            "cohort_users",
            F.coalesce("users", F.lit(0)).alias("users"),
        )
        .withColumn("share", F.col("users") / F.col("cohort_users"))
        .orderBy("cohort", "day_number")
    )
    return cohorts.toPandas()


def pageviews_per_minute(events: DataFrame, day: str) -> DataFrame:
    """The streaming ``pageviews_per_minute`` rows of one day, recomputed: known users' page
    views per page type and UTC minute, and how many distinct users made them."""
    minute = F.date_trunc("minute", "time")
    return (
        events.where((F.col("event") == "pageview") & (F.to_date(minute).cast("string") == day))
        .groupBy(minute.alias("window_start"), "page_type")
        .agg(F.count("*").alias("views"), F.countDistinct("user_id").alias("users"))
        .withColumn("window_end", F.col("window_start") + F.expr("INTERVAL 1 MINUTE"))
    )


def recompute_pageviews(spark: SparkSession, settings: Settings, cassandra: CassandraClient, day: str) -> pd.DataFrame:
    """Every row of ``pageviews_per_minute`` on ``day`` (YYYY-MM-DD) where the lake and the
    streaming table disagree: columns window_start, page_type, lake_views, lake_users,
    streaming_views, streaming_users and ``difference`` ("not in the streaming table", "not in
    the lake", "counts differ"). Empty when they agree."""
    day = _day(day)
    recomputed = pageviews_per_minute(events(spark, settings, days=[day]), day).toPandas()
    streaming = cassandra.query_df(
        f"SELECT window_start, page_type, views, users FROM {cassandra.keyspace}.pageviews_per_minute WHERE day = %s",
        [date.fromisoformat(day)],
    )
    return compare_pageviews(recomputed, streaming)


def compare_pageviews(lake_rows: pd.DataFrame, streaming_rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of two pageviews_per_minute tables (window_start, page_type, views, users) that
    differ, outer-joined on the window and page type."""
    key = ["window_start", "page_type"]

    def prepared(frame: pd.DataFrame, side: str) -> pd.DataFrame:
        frame = frame.reindex(columns=[*key, "views", "users"]).copy()
        frame["window_start"] = pd.to_datetime(frame["window_start"]).dt.tz_localize(None)
        return frame.rename(columns={"views": f"{side}_views", "users": f"{side}_users"})

    both = prepared(lake_rows, "lake").merge(prepared(streaming_rows, "streaming"), on=key, how="outer")
    in_lake, in_streaming = both["lake_views"].notna(), both["streaming_views"].notna()
    differs = (both["lake_views"] != both["streaming_views"]) | (both["lake_users"] != both["streaming_users"])
    both["difference"] = None
    both.loc[in_lake & ~in_streaming, "difference"] = "not in the streaming table"
    both.loc[~in_lake & in_streaming, "difference"] = "not in the lake"
    both.loc[in_lake & in_streaming & differs, "difference"] = "counts differ"
    differences = both[both["difference"].notna()].sort_values(key, ignore_index=True)
    for column in ("lake_views", "lake_users", "streaming_views", "streaming_users"):
        differences[column] = differences[column].astype("Int64")
    return differences


def repair_pageviews(cassandra: CassandraClient, differences: pd.DataFrame) -> int:
    """Write the lake's counts over the streaming table's rows that differ or are missing, and
    delete the rows the lake has no page views for; returns how many rows were changed."""
    table = f"{cassandra.keyspace}.pageviews_per_minute"
    changed = 0
    for row in differences.to_dict("records"):
        start = row["window_start"].to_pydatetime()
        day = start.date()
        if row["difference"] == "not in the lake":
            cassandra.execute(
                f"DELETE FROM {table} WHERE day = %s AND window_start = %s AND page_type = %s",
                [day, start, row["page_type"]],
            )
        else:
            counts = [int(row["lake_views"]), int(row["lake_users"])]
            cassandra.execute(
                f"INSERT INTO {table} (day, window_start, page_type, window_end, views, users) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [day, start, row["page_type"], start + timedelta(minutes=1), *counts],
            )
        changed += 1
    return changed


def _day(day: str | date) -> str:
    try:
        return (day if isinstance(day, date) else datetime.strptime(str(day), "%Y-%m-%d").date()).isoformat()
    except ValueError:
        raise BatchError(f"{day!r} is not a day; write it like 2026-12-01 (a UTC day)") from None
