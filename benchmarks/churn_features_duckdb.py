"""The churn-features transformation of ``include/glue/churn_features.py`` as DuckDB SQL (a benchmark twin).

Same arguments as the Glue script (``--dt --input_customers --input_events --output_features
--output_processed_events --output_quarantine --output_metrics``; others are ignored) and the same outputs:
features, processed events and quarantine as Parquet (sorted like the Glue job's), the metrics as one JSON
line. The rules are the Glue job's for the current contracts (``include/contracts/raw_*.json``):

* customers CSV read as text by its header; a row with the wrong number of fields, or a non-empty value that
  does not cast to the contract type (``signup_date`` must be ``yyyy-MM-dd``), is ``malformed_csv``;
* events JSON lines: a line that is not a JSON object, or whose ``amount``/``duration_s`` is not a number,
  is ``malformed_json`` (blank lines are skipped, as Spark does);
* exact duplicates dropped; ``missing_customer_id`` / ``missing_churned`` / ``invalid_customer``, then
  ``duplicate_customer_id`` for ids left on several rows; ``invalid_event``, ``outlier``,
  ``unknown_customer``;
* missing age → median age; missing monthly_fee → its plan's median fee, else the overall median;
* one feature row per valid customer, with the Glue job's columns and types.

Benchmark code, not part of the pipeline: it is not run on AWS and is checked against the Glue job by
``benchmarks/etl_engines.py`` (features, quarantine counts by reason, metrics counts).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

PLANS = ["basic", "standard", "premium"]
REGIONS = ["north", "south", "east", "west"]
EVENT_TYPES = ["login", "play", "purchase", "support"]
CUSTOMER_REASONS = [
    "malformed_csv",
    "missing_customer_id",
    "missing_churned",
    "invalid_customer",
    "duplicate_customer_id",
]
EVENT_REASONS = ["malformed_json", "invalid_event", "outlier", "unknown_customer"]
CUSTOMER_COLUMNS = [
    "customer_id",
    "signup_date",
    "plan",
    "monthly_fee",
    "age",
    "region",
    "support_tickets",
    "churned",
]
EVENT_KEYS = {
    "event_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "ts": "VARCHAR",
    "event_type": "VARCHAR",
    "amount": "DOUBLE",
    "duration_s": "DOUBLE",
}
ROWS_PER_FILE = 1_000_000
UNUSED = "\x1e"  # a delimiter that is not in JSON text: read_csv returns whole lines


def sql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def files_of(directory: str) -> list[str]:
    """Data files under ``directory`` (hidden and ``_``-prefixed parts skipped, as Spark does)."""
    root = Path(directory)
    found = [
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    ]
    return sorted(str(p) for p in found)


def csv_text(column: str) -> str:
    """A text field as the csv module writes it (the Glue job's ``csv_field``)."""
    return (
        f"CASE WHEN {column} IS NULL THEN '' WHEN regexp_matches({column}, '[,\"\\r\\n]') "
        f"THEN '\"' || replace({column}, '\"', '\"\"') || '\"' ELSE {column} END"
    )


def spark_round(value: str, digits: int) -> str:
    """Spark's ``round`` of a double: half-up on its decimal digits (DuckDB's rounds the binary value)."""
    return f"CAST(round(CAST({value} AS DECIMAL(38, 9)), {digits}) AS DOUBLE)"


def script(customers: list[str], events: list[str], dt: str) -> str:
    """The whole transformation: temp tables ``features``, ``processed_events``, ``quarantine``, ``stats``."""
    files_c, files_e = f"[{sql_list(customers)}]", f"[{sql_list(events)}]"
    struct = "{" + ", ".join(f'"{k}": "{t}"' for k, t in EVENT_KEYS.items()) + "}"
    numbers = ("BIGINT", "UBIGINT", "DOUBLE", "NULL")  # JSON types Spark reads as a double
    well_typed = ", ".join(f"['OBJECT', '{a}', '{b}']" for a in numbers for b in numbers)
    raw_line = " || ',' || ".join(csv_text(c) for c in CUSTOMER_COLUMNS)
    record = " || ',' || ".join(f"coalesce(CAST({c} AS VARCHAR), '')" for c in CUSTOMER_COLUMNS)
    return f"""
SET TimeZone = 'UTC';

-- Customers: text by header; rows of the wrong width are rejected by the reader (kept as raw lines).
CREATE TEMP TABLE customers_text AS
SELECT * FROM read_csv({files_c}, header = true, all_varchar = true, delim = ',', quote = '"',
                       escape = '"', store_rejects = true);
CREATE TEMP TABLE customers_typed AS
SELECT customer_id,
       CASE WHEN regexp_full_match(signup_date, '\\s*\\d{{4}}-\\d{{2}}-\\d{{2}}\\s*')
            THEN TRY_CAST(trim(signup_date) AS DATE) END AS signup_date,
       plan,
       TRY_CAST(monthly_fee AS DOUBLE) AS monthly_fee,
       TRY_CAST(age AS DOUBLE) AS age,
       region,
       TRY_CAST(support_tickets AS INTEGER) AS support_tickets,
       TRY_CAST(churned AS INTEGER) AS churned,
       (signup_date IS NOT NULL AND NOT coalesce(regexp_full_match(signup_date,
            '\\s*\\d{{4}}-\\d{{2}}-\\d{{2}}\\s*') AND TRY_CAST(trim(signup_date) AS DATE) IS NOT NULL, false))
       OR (monthly_fee IS NOT NULL AND TRY_CAST(monthly_fee AS DOUBLE) IS NULL)
       OR (age IS NOT NULL AND TRY_CAST(age AS DOUBLE) IS NULL)
       OR (support_tickets IS NOT NULL AND TRY_CAST(support_tickets AS INTEGER) IS NULL)
       OR (churned IS NOT NULL AND TRY_CAST(churned AS INTEGER) IS NULL) AS not_castable,
       {raw_line} AS raw_line
FROM customers_text;
CREATE TEMP TABLE customers_malformed AS
SELECT csv_line AS record FROM (SELECT DISTINCT scan_id, file_id, line, csv_line FROM reject_errors)
UNION ALL SELECT raw_line FROM customers_typed WHERE not_castable;
CREATE TEMP TABLE customers_deduped AS
SELECT DISTINCT {", ".join(CUSTOMER_COLUMNS)} FROM customers_typed WHERE NOT not_castable;
CREATE TEMP TABLE customers_classified AS
SELECT *,
       CASE WHEN customer_id IS NULL OR trim(customer_id) = '' THEN 'missing_customer_id'
            WHEN churned IS NULL THEN 'missing_churned'
            WHEN churned NOT IN (0, 1) OR NOT coalesce(plan IN ({sql_list(PLANS)}), false)
                 OR NOT coalesce(region IN ({sql_list(REGIONS)}), false) OR signup_date IS NULL
                 OR signup_date > DATE '{dt}' OR support_tickets IS NULL OR support_tickets < 0
                 OR age < 0 OR monthly_fee < 0 THEN 'invalid_customer'
       END AS reason
FROM customers_deduped;
CREATE TEMP TABLE customers_conflicting AS
SELECT customer_id FROM customers_classified WHERE reason IS NULL GROUP BY customer_id HAVING count(*) > 1;
CREATE TEMP TABLE customers_valid AS
SELECT * EXCLUDE (reason) FROM customers_classified
WHERE reason IS NULL AND customer_id NOT IN (SELECT customer_id FROM customers_conflicting);
CREATE TEMP TABLE imputation AS
SELECT quantile_cont(age, 0.5) AS median_age, quantile_cont(monthly_fee, 0.5) AS median_fee,
       count(*) FILTER (WHERE age IS NULL) AS missing_age,
       count(*) FILTER (WHERE monthly_fee IS NULL) AS missing_fee
FROM customers_valid;
CREATE TEMP TABLE customers AS
SELECT c.* REPLACE (
           coalesce(c.age, coalesce(i.median_age, 0.0)) AS age,
           coalesce(c.monthly_fee, p.plan_median_fee, coalesce(i.median_fee, 0.0)) AS monthly_fee)
FROM customers_valid c
LEFT JOIN (SELECT plan, quantile_cont(monthly_fee, 0.5) AS plan_median_fee FROM customers_valid GROUP BY plan)
     p USING (plan)
CROSS JOIN imputation i;

-- Events: one JSON object per non-blank line; not JSON, not an object or a non-number amount is malformed.
CREATE TEMP TABLE events_lines AS
SELECT e, CASE WHEN e IS NULL THEN line END AS malformed
FROM (
SELECT line, CASE WHEN list_transform(json_type(json, ['$', '$.amount', '$.duration_s']),
                                      t -> coalesce(t, 'NULL')) IN ({well_typed})
                  THEN json_transform(json, '{struct}') END AS e
FROM (SELECT line, CASE WHEN json_valid(line) THEN line END AS json
      FROM read_csv({files_e}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '{UNUSED}',
                    quote = '', escape = '', auto_detect = false, strict_mode = false)
      WHERE line IS NOT NULL AND regexp_matches(line, '[^\\x00-\\x20]'))  -- Spark skips blank lines
);
CREATE TEMP TABLE events_classified AS
SELECT *, TRY_CAST(ts AS TIMESTAMPTZ) AS ts_parsed,
       CASE WHEN event_id IS NULL OR customer_id IS NULL OR TRY_CAST(ts AS TIMESTAMPTZ) IS NULL
                 OR NOT coalesce(event_type IN ({sql_list(EVENT_TYPES)}), false)
                 OR amount IS NULL OR duration_s IS NULL THEN 'invalid_event'
            WHEN amount < 0 OR amount > 10000.0 OR duration_s < 0 OR duration_s > 86400.0 THEN 'outlier'
            WHEN customer_id NOT IN (SELECT customer_id FROM customers) THEN 'unknown_customer'
       END AS reason
FROM (SELECT DISTINCT e.* FROM events_lines WHERE e IS NOT NULL);
CREATE TEMP TABLE processed_events AS
SELECT event_id, customer_id, ts_parsed AS ts, event_type, amount, duration_s
FROM events_classified WHERE reason IS NULL;

CREATE TEMP TABLE features AS
SELECT c.customer_id, c.plan, c.region, CAST(c.monthly_fee AS DOUBLE) AS monthly_fee,
       CAST(c.age AS DOUBLE) AS age, CAST(c.support_tickets AS INTEGER) AS support_tickets,
       CAST(DATE '{dt}' - c.signup_date AS INTEGER) AS tenure_days,
       CAST(coalesce(a.n_events, 0) AS BIGINT) AS n_events,
       CAST(coalesce(a.n_logins, 0) AS BIGINT) AS n_logins,
       CAST(coalesce(a.n_purchases, 0) AS BIGINT) AS n_purchases,
       CAST(coalesce(a.total_amount, 0.0) AS DOUBLE) AS total_amount,
       CAST(coalesce(a.avg_session_s, 0.0) AS DOUBLE) AS avg_session_s,
       CAST(c.churned AS INTEGER) AS churned
FROM customers c
LEFT JOIN (
    SELECT customer_id, count(*) AS n_events,
           count(*) FILTER (WHERE event_type = 'login') AS n_logins,
           count(*) FILTER (WHERE event_type = 'purchase') AS n_purchases,
           {spark_round("sum(amount)", 2)} AS total_amount,
           {spark_round("avg(duration_s)", 3)} AS avg_session_s
    FROM processed_events GROUP BY customer_id
) a USING (customer_id);

CREATE TEMP TABLE quarantine AS
SELECT 'customers' AS source, 'malformed_csv' AS reason, record FROM customers_malformed
UNION ALL
SELECT 'customers', reason, {record} FROM customers_classified WHERE reason IS NOT NULL
UNION ALL
SELECT 'customers', 'duplicate_customer_id', {record} FROM customers_classified
WHERE reason IS NULL AND customer_id IN (SELECT customer_id FROM customers_conflicting)
UNION ALL
SELECT 'events', 'malformed_json', malformed FROM events_lines WHERE e IS NULL
UNION ALL
SELECT 'events', reason,
       -- as Spark's to_json: null fields left out (a JSON merge patch drops them)
       CAST(json_merge_patch('{{}}', to_json(struct_pack(event_id, customer_id, ts, event_type, amount,
                                                        duration_s))) AS VARCHAR)
FROM events_classified WHERE reason IS NOT NULL;

CREATE TEMP TABLE stats AS
SELECT (SELECT count(*) FROM customers_text)
           + (SELECT count(*) FROM (SELECT DISTINCT scan_id, file_id, line FROM reject_errors))
           AS customers_landed,
       (SELECT count(*) FROM events_lines) AS events_landed,
       (SELECT count(*) FROM customers_typed WHERE NOT not_castable)
           - (SELECT count(*) FROM customers_deduped) AS customer_dups,
       (SELECT count(*) FROM events_lines WHERE e IS NOT NULL)
           - (SELECT count(*) FROM events_classified) AS event_dups,
       (SELECT missing_age FROM imputation) AS missing_age,
       (SELECT missing_fee FROM imputation) AS missing_fee;
"""


def write_parquet(con: duckdb.DuckDBPyConnection, table: str, path: str, keys: list[str]) -> int:
    """Write ``table`` sorted by ``keys`` into ``path`` (one file per million rows at most); return rows."""
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    order = ", ".join(keys)
    con.execute(
        f"COPY (SELECT * FROM {table} ORDER BY {order}) TO '{out / 'data.parquet'}' "
        f"(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE {ROWS_PER_FILE})"
    )
    return rows


def drift(customers: list[str], events: list[str]) -> dict[str, list[str]]:
    """Columns / keys not in the contract, as the Glue job's pre-flight reports them (first file lines)."""
    header: list[str] = []
    for path in customers:
        with open(path, encoding="utf-8-sig") as handle:
            header += [name.strip() for name in handle.readline().rstrip("\r\n").split(",")]
    keys: dict[str, None] = {}
    for path in events:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for _, line in zip(range(1000), handle, strict=False):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    keys.update(dict.fromkeys(record))
    return {
        "customers": list(dict.fromkeys(n for n in header if n not in CUSTOMER_COLUMNS)),
        "events": [k for k in keys if k not in EVENT_KEYS],
    }


def main(argv: list[str]) -> dict:
    args = dict(zip(argv[1::2], argv[2::2], strict=False))
    dt = args["--dt"]
    customers, events = files_of(args["--input_customers"]), files_of(args["--input_events"])
    con = duckdb.connect()
    con.execute(script(customers, events, dt))
    features_rows = write_parquet(con, "features", args["--output_features"], ["customer_id"])
    events_cleaned = write_parquet(
        con, "processed_events", args["--output_processed_events"], ["customer_id", "ts", "event_id"]
    )
    quarantined = write_parquet(
        con, "quarantine", args["--output_quarantine"], ["source", "reason", "record"]
    )
    cur = con.execute("SELECT * FROM stats")
    stats = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    by = dict(con.execute("SELECT source || '/' || reason, count(*) FROM quarantine GROUP BY ALL").fetchall())
    found = drift(customers, events)
    root_c, root_e = Path(args["--input_customers"]), Path(args["--input_events"])
    metrics = {
        "dt": dt,
        "job_name": args.get("--JOB_NAME", "churn_features_duckdb"),
        "customers_landed": stats["customers_landed"],
        "events_landed": stats["events_landed"],
        "features_rows": features_rows,
        "events_cleaned": events_cleaned,
        "quarantined": quarantined,
        "quarantined_by_source": {
            source: sum(n for key, n in by.items() if key.startswith(source + "/"))
            for source in ("customers", "events")
        },
        "quarantined_by_reason": {
            **{r: by.get(f"customers/{r}", 0) for r in CUSTOMER_REASONS},
            **{r: by.get(f"events/{r}", 0) for r in EVENT_REASONS},
        },
        "duplicates_dropped": stats["customer_dups"] + stats["event_dups"],
        "duplicates_by_source": {"customers": stats["customer_dups"], "events": stats["event_dups"]},
        "imputed": {"age": stats["missing_age"], "monthly_fee": stats["missing_fee"]},
        "imputed_total": stats["missing_age"] + stats["missing_fee"],
        "schema_drift": found,
        "schema_drift_columns": sum(len(v) for v in found.values()),
        "input_files": {
            "customers": [str(Path(p).relative_to(root_c)) for p in customers],
            "events": [str(Path(p).relative_to(root_e)) for p in events],
        },
    }
    out = Path(args["--output_metrics"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics) + "\n")
    print(f"[churn_features_duckdb] {json.dumps(metrics)}", flush=True)
    return metrics


if __name__ == "__main__":
    main(sys.argv)
