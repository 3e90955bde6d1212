"""Glue 5.0 (PySpark) job: raw customers CSV + events JSON lines of one day → churn features.

Job arguments (Glue style ``--NAME value``): ``JOB_NAME dt input_customers input_events output_features
output_processed_events output_quarantine output_metrics``. Inputs and outputs are directory URIs
(``s3://...`` on AWS Glue, plain local paths when run locally by ``sagelake.local.glue_runner``).

Steps: read both inputs with explicit schemas (malformed records kept in ``_corrupt_record``) → quarantine
bad records with a reason → drop exact duplicates → impute missing age (median) and monthly_fee (median per
plan) → aggregate events per customer → join into one feature row per customer. Every output is written in
overwrite mode, sorted, so a re-run replaces the partition with identical data.

Self-contained on purpose: this file is uploaded to S3 and run by AWS Glue as is.
"""

from __future__ import annotations

import math
import re
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

JOB_ARGS = [
    "JOB_NAME",
    "dt",
    "input_customers",
    "input_events",
    "output_features",
    "output_processed_events",
    "output_quarantine",
    "output_metrics",
]
PLANS = ["basic", "standard", "premium"]
REGIONS = ["north", "south", "east", "west"]
EVENT_TYPES = ["login", "play", "purchase", "support"]
MAX_AMOUNT = 10000.0
MAX_DURATION_S = 86400.0
ROWS_PER_FILE = 1_000_000
CORRUPT = "_corrupt_record"

CUSTOMER_REASONS = [
    "malformed_csv",
    "missing_customer_id",
    "missing_churned",
    "invalid_customer",
    "duplicate_customer_id",
]
EVENT_REASONS = ["malformed_json", "invalid_event", "outlier", "unknown_customer"]

CUSTOMERS_SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.StringType()),
        T.StructField("signup_date", T.DateType()),
        T.StructField("plan", T.StringType()),
        T.StructField("monthly_fee", T.DoubleType()),
        T.StructField("age", T.DoubleType()),
        T.StructField("region", T.StringType()),
        T.StructField("support_tickets", T.IntegerType()),
        T.StructField("churned", T.IntegerType()),
        T.StructField(CORRUPT, T.StringType()),
    ]
)
EVENTS_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("customer_id", T.StringType()),
        T.StructField("ts", T.StringType()),
        T.StructField("event_type", T.StringType()),
        T.StructField("amount", T.DoubleType()),
        T.StructField("duration_s", T.DoubleType()),
        T.StructField(CORRUPT, T.StringType()),
    ]
)
CUSTOMER_COLUMNS = [f.name for f in CUSTOMERS_SCHEMA.fields if f.name != CORRUPT]
EVENT_COLUMNS = [f.name for f in EVENTS_SCHEMA.fields if f.name != CORRUPT]
FEATURE_COLUMNS = [
    "customer_id",
    "plan",
    "region",
    "monthly_fee",
    "age",
    "support_tickets",
    "tenure_days",
    "n_events",
    "n_logins",
    "n_purchases",
    "total_amount",
    "avg_session_s",
    "churned",
]
SOURCES = ["customers", "events"]
IMPUTED_COLUMNS = ["age", "monthly_fee"]


def counts_struct(names: list[str]) -> T.StructType:
    return T.StructType([T.StructField(name, T.LongType()) for name in names])


METRICS_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.StringType()),
        T.StructField("job_name", T.StringType()),
        T.StructField("customers_landed", T.LongType()),
        T.StructField("events_landed", T.LongType()),
        T.StructField("features_rows", T.LongType()),
        T.StructField("events_cleaned", T.LongType()),
        T.StructField("quarantined", T.LongType()),
        T.StructField("quarantined_by_source", counts_struct(SOURCES)),
        T.StructField("quarantined_by_reason", counts_struct(CUSTOMER_REASONS + EVENT_REASONS)),
        T.StructField("duplicates_dropped", T.LongType()),
        T.StructField("duplicates_by_source", counts_struct(SOURCES)),
        T.StructField("imputed", counts_struct(IMPUTED_COLUMNS)),
        T.StructField("imputed_total", T.LongType()),
    ]
)


def local_resolved_options(argv: list[str], options: list[str]) -> dict[str, str]:
    """Same contract as ``awsglue.utils.getResolvedOptions``: pick ``--NAME value`` pairs, ignore the rest."""
    found: dict[str, str] = {}
    i = 1
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
            found[name] = value
        i += 1
    missing = [f"--{name}" for name in options if name not in found]
    if missing:
        raise SystemExit(f"missing required job argument(s): {' '.join(missing)}")
    return {name: found[name] for name in options}


try:  # on AWS Glue
    from awsglue.utils import getResolvedOptions
except ImportError:  # local Spark
    getResolvedOptions = local_resolved_options  # noqa: N816


def log(message: str) -> None:
    print(f"[churn_features] {message}", flush=True)


def start_glue_job(spark: SparkSession, args: dict[str, str]):
    """``Job.init`` when running on AWS Glue (bookmarks, metrics); ``None`` locally."""
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
    except ImportError:
        return None
    job = Job(GlueContext(spark.sparkContext))
    job.init(args["JOB_NAME"], args)
    return job


def first_reason(rules: list[tuple[str, object]]):
    """A column holding the first reason whose condition holds, else null."""
    expr = F.lit(None).cast("string")
    for reason, condition in reversed(rules):
        expr = F.when(condition, F.lit(reason)).otherwise(expr)
    return expr


def quarantine_rows(df: DataFrame, source: str, record) -> DataFrame:
    return df.select(F.lit(source).alias("source"), F.col("reason"), record.alias("record"))


def csv_record(columns: list[str]):
    """The raw CSV line when Spark kept it, else the row re-joined as CSV (empty for nulls)."""
    joined = F.concat_ws(",", *[F.coalesce(F.col(c).cast("string"), F.lit("")) for c in columns])
    return F.coalesce(F.col(CORRUPT), joined)


def json_record(columns: list[str]):
    return F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(c) for c in columns])))


def clean_customers(raw: DataFrame, dt: str) -> tuple[DataFrame, DataFrame, int]:
    """Valid, de-duplicated customers; their quarantine rows; exact duplicates dropped."""
    corrupt = F.col(CORRUPT).isNotNull()
    parsed = raw.filter(~corrupt).drop(CORRUPT)
    deduped = parsed.dropDuplicates(CUSTOMER_COLUMNS).cache()
    duplicates = parsed.count() - deduped.count()
    reason = first_reason(
        [
            ("missing_customer_id", F.col("customer_id").isNull() | (F.trim("customer_id") == "")),
            ("missing_churned", F.col("churned").isNull()),
            (
                "invalid_customer",
                ~F.col("churned").isin(0, 1)
                | ~F.coalesce(F.col("plan").isin(PLANS), F.lit(False))
                | ~F.coalesce(F.col("region").isin(REGIONS), F.lit(False))
                | F.col("signup_date").isNull()
                | (F.col("signup_date") > F.lit(dt).cast("date"))
                | F.col("support_tickets").isNull()
                | (F.col("support_tickets") < 0)
                | (F.col("age") < 0)
                | (F.col("monthly_fee") < 0),
            ),
        ]
    )
    classified = deduped.withColumn("reason", reason)
    candidates = classified.filter(F.col("reason").isNull())
    conflicting = candidates.groupBy("customer_id").count().filter("count > 1").select("customer_id")
    conflicts = candidates.join(conflicting, "customer_id", "left_semi").withColumn(
        "reason", F.lit("duplicate_customer_id")
    )
    valid = candidates.join(conflicting, "customer_id", "left_anti").drop("reason")
    bad = classified.filter(F.col("reason").isNotNull()).unionByName(conflicts.select(classified.columns))
    quarantine = quarantine_rows(
        raw.filter(corrupt).withColumn("reason", F.lit("malformed_csv")),
        "customers",
        csv_record(CUSTOMER_COLUMNS),
    ).unionByName(
        quarantine_rows(
            bad.withColumn(CORRUPT, F.lit(None).cast("string")), "customers", csv_record(CUSTOMER_COLUMNS)
        )
    )
    return valid, quarantine, duplicates


def impute_customers(valid: DataFrame) -> tuple[DataFrame, dict[str, int]]:
    """Fill missing age with the median age and missing monthly_fee with its plan's median fee."""
    stats = valid.agg(
        F.expr("percentile(age, 0.5)").alias("median_age"),
        F.expr("percentile(monthly_fee, 0.5)").alias("median_fee"),
        F.count(F.when(F.col("age").isNull(), 1)).alias("missing_age"),
        F.count(F.when(F.col("monthly_fee").isNull(), 1)).alias("missing_fee"),
    ).first()
    plan_fees = valid.groupBy("plan").agg(F.expr("percentile(monthly_fee, 0.5)").alias("plan_median_fee"))
    median_age = stats["median_age"] if stats["median_age"] is not None else 0.0
    median_fee = stats["median_fee"] if stats["median_fee"] is not None else 0.0
    imputed = (
        valid.join(plan_fees, "plan", "left")
        .withColumn("age", F.coalesce(F.col("age"), F.lit(float(median_age))))
        .withColumn(
            "monthly_fee",
            F.coalesce(F.col("monthly_fee"), F.col("plan_median_fee"), F.lit(float(median_fee))),
        )
        .drop("plan_median_fee")
    )
    return imputed, {"age": int(stats["missing_age"]), "monthly_fee": int(stats["missing_fee"])}


def clean_events(raw: DataFrame, customers: DataFrame) -> tuple[DataFrame, DataFrame, int]:
    """Valid, de-duplicated events of known customers; their quarantine rows; exact duplicates dropped."""
    corrupt = F.col(CORRUPT).isNotNull()
    parsed = raw.filter(~corrupt).drop(CORRUPT)
    deduped = parsed.dropDuplicates(EVENT_COLUMNS).withColumn("ts_parsed", F.to_timestamp("ts")).cache()
    duplicates = parsed.count() - deduped.count()
    reason = first_reason(
        [
            (
                "invalid_event",
                F.col("event_id").isNull()
                | F.col("customer_id").isNull()
                | F.col("ts_parsed").isNull()
                | ~F.coalesce(F.col("event_type").isin(EVENT_TYPES), F.lit(False))
                | F.col("amount").isNull()
                | F.col("duration_s").isNull(),
            ),
            (
                "outlier",
                (F.col("amount") < 0)
                | (F.col("amount") > MAX_AMOUNT)
                | (F.col("duration_s") < 0)
                | (F.col("duration_s") > MAX_DURATION_S),
            ),
        ]
    )
    classified = deduped.withColumn("reason", reason)
    candidates = classified.filter(F.col("reason").isNull())
    known = customers.select("customer_id")
    unknown = candidates.join(known, "customer_id", "left_anti").withColumn(
        "reason", F.lit("unknown_customer")
    )
    valid = candidates.join(known, "customer_id", "left_semi").select(
        "event_id",
        "customer_id",
        F.col("ts_parsed").alias("ts"),
        "event_type",
        "amount",
        "duration_s",
    )
    bad = classified.filter(F.col("reason").isNotNull()).unionByName(unknown.select(classified.columns))
    no_corrupt = F.lit(None).cast("string").alias(CORRUPT)
    quarantine = quarantine_rows(
        raw.filter(corrupt).withColumn("reason", F.lit("malformed_json")),
        "events",
        json_record(EVENT_COLUMNS),
    ).unionByName(quarantine_rows(bad.select("*", no_corrupt), "events", json_record(EVENT_COLUMNS)))
    return valid, quarantine, duplicates


def build_features(customers: DataFrame, events: DataFrame, dt: str) -> DataFrame:
    """One row per customer in the curated schema; customers without events get zeros."""
    per_customer = events.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("n_events"),
        F.count(F.when(F.col("event_type") == "login", 1)).alias("n_logins"),
        F.count(F.when(F.col("event_type") == "purchase", 1)).alias("n_purchases"),
        F.round(F.sum("amount"), 2).alias("total_amount"),
        F.round(F.avg("duration_s"), 3).alias("avg_session_s"),
    )
    joined = customers.join(per_customer, "customer_id", "left")
    return joined.select(
        F.col("customer_id").cast("string"),
        F.col("plan").cast("string"),
        F.col("region").cast("string"),
        F.col("monthly_fee").cast("double"),
        F.col("age").cast("double"),
        F.col("support_tickets").cast("int"),
        F.datediff(F.lit(dt).cast("date"), F.col("signup_date")).cast("int").alias("tenure_days"),
        F.coalesce(F.col("n_events"), F.lit(0)).cast("bigint").alias("n_events"),
        F.coalesce(F.col("n_logins"), F.lit(0)).cast("bigint").alias("n_logins"),
        F.coalesce(F.col("n_purchases"), F.lit(0)).cast("bigint").alias("n_purchases"),
        F.coalesce(F.col("total_amount"), F.lit(0.0)).cast("double").alias("total_amount"),
        F.coalesce(F.col("avg_session_s"), F.lit(0.0)).cast("double").alias("avg_session_s"),
        F.col("churned").cast("int"),
    )


def write_parquet(df: DataFrame, path: str, keys: list[str], rows: int) -> None:
    """Overwrite ``path`` with ``df`` sorted by ``keys`` in a few files."""
    files = max(1, math.ceil(rows / ROWS_PER_FILE))
    df.repartition(files, *keys).sortWithinPartitions(*keys).write.mode("overwrite").parquet(path)


def counts_by(df: DataFrame, column: str, names: list[str]) -> dict[str, int]:
    """Row counts per value of ``column``, with a zero for every expected name that does not occur."""
    found = {
        row[column]: int(row["n"]) for row in df.groupBy(column).agg(F.count(F.lit(1)).alias("n")).collect()
    }
    unexpected = sorted(set(found) - set(names))
    if unexpected:
        raise RuntimeError(f"unexpected {column} value(s) {unexpected}: add them to the metrics schema")
    return {name: found.get(name, 0) for name in names}


def metrics_row(metrics: dict, schema: T.StructType) -> tuple:
    """``metrics`` as a tuple in schema order (nested dicts become tuples of their struct's fields)."""
    values = []
    for field in schema.fields:
        value = metrics[field.name]
        values.append(
            metrics_row(value, field.dataType) if isinstance(field.dataType, T.StructType) else value
        )
    return tuple(values)


def run(spark: SparkSession, args: dict[str, str]) -> dict:
    dt = args["dt"]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", dt):
        raise ValueError(f"--dt {dt!r} is not a YYYY-MM-DD partition date")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")

    raw_customers = (
        spark.read.schema(CUSTOMERS_SCHEMA)
        .option("header", "true")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("dateFormat", "yyyy-MM-dd")
        .csv(args["input_customers"])
        .cache()
    )
    raw_events = (
        spark.read.schema(EVENTS_SCHEMA)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json(args["input_events"])
        .cache()
    )
    customers_landed, events_landed = raw_customers.count(), raw_events.count()
    log(f"dt={dt}: {customers_landed} customer rows, {events_landed} event lines landed")

    valid_customers, customer_quarantine, customer_dups = clean_customers(raw_customers, dt)
    customers, imputed = impute_customers(valid_customers)
    customers = customers.cache()
    events, event_quarantine, event_dups = clean_events(raw_events, customers)
    events = events.cache()
    quarantine = customer_quarantine.unionByName(event_quarantine).cache()
    features = build_features(customers, events, dt).cache()

    features_rows, events_cleaned = features.count(), events.count()
    quarantined = quarantine.count()
    write_parquet(features, args["output_features"], ["customer_id"], features_rows)
    write_parquet(events, args["output_processed_events"], ["customer_id", "ts", "event_id"], events_cleaned)
    write_parquet(quarantine, args["output_quarantine"], ["source", "reason", "record"], quarantined)

    metrics = {
        "dt": dt,
        "job_name": args["JOB_NAME"],
        "customers_landed": customers_landed,
        "events_landed": events_landed,
        "features_rows": features_rows,
        "events_cleaned": events_cleaned,
        "quarantined": quarantined,
        "quarantined_by_source": counts_by(quarantine, "source", SOURCES),
        "quarantined_by_reason": counts_by(quarantine, "reason", CUSTOMER_REASONS + EVENT_REASONS),
        "duplicates_dropped": customer_dups + event_dups,
        "duplicates_by_source": {"customers": customer_dups, "events": event_dups},
        "imputed": imputed,
        "imputed_total": sum(imputed.values()),
    }
    spark.createDataFrame([metrics_row(metrics, METRICS_SCHEMA)], METRICS_SCHEMA).coalesce(1).write.mode(
        "overwrite"
    ).json(args["output_metrics"])
    log(
        f"features={features_rows} events={events_cleaned} quarantined={quarantined} "
        f"duplicates={metrics['duplicates_dropped']} imputed={imputed}"
    )
    spark.catalog.clearCache()
    return metrics


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, JOB_ARGS)
    spark = SparkSession.builder.getOrCreate()
    job = start_glue_job(spark, args)
    run(spark, args)
    if job is not None:
        job.commit()


if __name__ == "__main__":
    main(sys.argv)
