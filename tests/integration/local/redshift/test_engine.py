"""The local Redshift engine against the control plane: the warehouse SQL of ``include/sql/warehouse/``
really runs on a DuckDB file, Spectrum tables are read through moto's Glue catalog from moto's S3."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import jinja2
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devstack.datagen import curated_features
from sagelake.config.settings import WAREHOUSE_SQL_DIR
from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.local.redshift.engine import LocalRedshiftEngine, database_path
from sagelake.local.redshift.errors import NoResultSetError, RedshiftEngineError
from tests.support.constants import REGION
from tests.support.contract import FEATURES_SCHEMA

DAY1, DAY2, STRAY_DAY = "2026-11-26", "2026-11-27", "2026-11-28"
TABLE = "churn_features_daily"


def features(n: int, seed: int) -> pd.DataFrame:
    """A curated-contract feature frame of ``n`` customers, every one with events."""
    return curated_features(n, seed, churn_p=0.25, zero_event_p=0.0)


def put(s3: Any, uri: str, body: bytes) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, schema=FEATURES_SCHEMA, preserve_index=False), buf)
    return buf.getvalue()


def render(name: str, **load: str) -> str:
    """A warehouse SQL file rendered as Airflow renders it for the ``warehouse_load`` DAG."""
    ti = SimpleNamespace(xcom_pull=lambda task_ids: load)
    warehouse = {"spectrum_schema": "spectrum", "warehouse_table": TABLE}
    template = jinja2.Template((WAREHOUSE_SQL_DIR / name).read_text(), undefined=jinja2.StrictUndefined)
    return template.render(ti=ti, params={"glue_database": load["glue_database"]}, warehouse=warehouse)


class Lakehouse:
    """A lake with two published days (and stray files), its catalog, and a local Redshift database."""

    def __init__(self, s3: Any, glue: Any, bucket: str, engine: LocalRedshiftEngine, database: str) -> None:
        self.lake, self.engine, self.database = Lake(bucket), engine, database
        self.frames = {DAY1: features(60, seed=1), DAY2: features(45, seed=2)}
        self.metrics = {
            DAY1: {"features_rows": 60, "quarantined": 3},
            DAY2: {"features_rows": 45, "quarantined": 0},
        }
        for day, frame in self.frames.items():
            published = self.lake.curated_features(day) + "version=v2/"
            put(s3, published + "part-00000.parquet", parquet(frame))
            # a superseded version beside it, never registered: Spectrum must not read it
            put(
                s3,
                self.lake.curated_features(day) + "version=v1/part-00000.parquet",
                parquet(features(7, seed=9)),
            )
            catalog.register_partition(glue, database, "churn_features", day, location=published)
            metrics = {"job_name": "churn", **self.metrics[day]}
            put(s3, self.lake.etl_metrics(day) + "metrics.json", json.dumps(metrics).encode())
            catalog.register_partition(glue, database, "etl_metrics", day)
        # a day whose files landed but that was never registered (not published)
        put(s3, self.lake.curated_features(STRAY_DAY) + "part-00000.parquet", parquet(features(11, seed=3)))

    def load(self, day: str) -> dict[str, str]:
        return {
            "dt": day,
            "dt_from": DAY1,
            "version": "v2",
            "iam_role": "arn:aws:iam::123456789012:role/x",
            "glue_database": self.database,
        }

    def set_up(self, day: str = DAY1) -> None:
        self.engine.batch_execute_statement(
            [
                render("create_external_schema.sql", **self.load(day)),
                render("create_warehouse_table.sql", **self.load(day)),
            ]
        )

    def load_day(self, day: str):
        return self.engine.batch_execute_statement(
            [render("delete_day.sql", **self.load(day)), render("insert_day.sql", **self.load(day))]
        )

    def rows(self, sql: str) -> list[tuple]:
        return self.engine.execute_statement(sql).statements[0].rows


@pytest.fixture()
def glue(aws_env: str):
    return boto3.client("glue", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def house(s3, glue, bucket: str, aws_env: str, tmp_path: Path) -> Lakehouse:
    database = f"db_{uuid.uuid4().hex[:10]}"
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, Lake(bucket))
    engine = LocalRedshiftEngine(
        database_path(tmp_path, "wg", "dev"),
        glue,
        s3_endpoint_url=aws_env,
        region=REGION,
        access_key_id="testing",
        secret_access_key="testing",
    )
    return Lakehouse(s3, glue, bucket, engine, database)


def warehouse_frame(house: Lakehouse) -> pd.DataFrame:
    run = house.engine.execute_statement(f"SELECT * FROM public.{TABLE} ORDER BY dt, customer_id")
    statement = run.statements[0]
    return pd.DataFrame(statement.rows, columns=[name for name, _ in statement.columns])


def test_loading_a_day_twice_gives_the_published_rows_once(house: Lakehouse) -> None:
    house.set_up()
    house.set_up()  # idempotent DDL
    first = house.load_day(DAY1)
    assert [s.result_rows for s in first.statements] == [0, 60]
    second = house.load_day(DAY1)
    assert [s.result_rows for s in second.statements] == [60, 60]
    loaded = warehouse_frame(house)
    expected = house.frames[DAY1].sort_values("customer_id").reset_index(drop=True)
    assert len(loaded) == 60 and loaded["customer_id"].is_unique
    assert set(loaded["version"]) == {"v2"} and {str(d) for d in loaded["dt"]} == {DAY1}
    pd.testing.assert_frame_equal(
        loaded[expected.columns].reset_index(drop=True), expected, check_dtype=False
    )
    house.load_day(DAY2)
    assert house.rows(f"SELECT CAST(dt AS VARCHAR), count(*) FROM {TABLE} GROUP BY 1 ORDER BY 1") == [
        ("2026-11-26", 60),
        ("2026-11-27", 45),
    ]


def test_the_external_schema_sees_only_registered_partitions(house: Lakehouse) -> None:
    house.set_up()
    assert house.engine.external_schemas() == {"spectrum": house.database}
    counts = house.rows(
        "SELECT dt, count(*), count(DISTINCT customer_id) FROM spectrum.churn_features "
        "GROUP BY dt ORDER BY dt"
    )
    # the superseded version=v1 files and the unregistered STRAY_DAY never show
    assert counts == [(DAY1, 60, 60), (DAY2, 45, 45)]
    assert house.rows(f"SELECT count(*) FROM spectrum.churn_features WHERE dt = '{STRAY_DAY}'") == [(0,)]
    ids = {r[0] for r in house.rows("SELECT customer_id FROM spectrum.churn_features")}
    assert not any(i.startswith(("c9-", "c3-")) for i in ids)


def test_a_failing_statement_rolls_the_whole_batch_back(house: Lakehouse) -> None:
    house.set_up()
    house.load_day(DAY1)
    with pytest.raises(RedshiftEngineError, match=r"statement 3 of 3 failed, transaction rolled back"):
        house.engine.batch_execute_statement(
            [
                render("delete_day.sql", **house.load(DAY1)),
                "CREATE TABLE public.half_done (a INT)",
                f"INSERT INTO public.{TABLE} (dt, version, customer_id) VALUES ('2026-11-26', 'v', NULL)",
            ]
        )
    assert house.rows(f"SELECT count(*) FROM {TABLE}") == [(60,)]  # the DELETE was undone
    assert house.rows("SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_done'") == [
        (0,)
    ]


def test_varchar_length_is_enforced_as_redshift_does(house: Lakehouse) -> None:
    house.set_up()
    with pytest.raises(RedshiftEngineError, match="CHECK constraint"):
        house.engine.execute_statement(
            f"INSERT INTO {TABLE} (dt, version, customer_id) VALUES ('2026-11-26', 'v', '{'x' * 65}')"
        )


def test_the_join_with_spectrum_equals_pandas(house: Lakehouse) -> None:
    house.set_up()
    house.load_day(DAY1)
    house.load_day(DAY2)
    run = house.engine.execute_statement(render("churn_vs_etl.sql", **house.load(DAY2)))
    result = run.statements[0].get_statement_result()
    names = [c["name"] for c in result["ColumnMetadata"]]
    assert names == [
        "dt",
        "plan",
        "customers",
        "churned",
        "churn_rate",
        "avg_monthly_fee",
        "etl_features_rows",
        "etl_quarantined",
    ]
    got = [[next(iter(f.values())) for f in record] for record in result["Records"]]

    frames = [frame.assign(dt=day) for day, frame in house.frames.items()]
    grouped = pd.concat(frames).groupby(["dt", "plan"])
    expected = []
    for (day, plan), group in sorted(grouped, key=lambda item: item[0]):
        metrics = house.metrics[day]
        expected.append(
            [
                day,
                plan,
                len(group),
                int(group["churned"].sum()),
                round(group["churned"].mean(), 4),
                round(group["monthly_fee"].mean(), 2),
                metrics["features_rows"],
                metrics["quarantined"],
            ]
        )
    assert len(got) == len(expected) == 6
    for row, want in zip(got, expected, strict=True):
        assert row[:4] == want[:4] and row[6:] == want[6:]
        assert row[4] == pytest.approx(want[4], abs=1e-4) and row[5] == pytest.approx(want[5], abs=1e-2)
    assert result["TotalNumRows"] == 6
    assert result["ColumnMetadata"][2]["typeName"] == "int8"


def test_statements_without_rows_have_no_result_set(house: Lakehouse) -> None:
    house.set_up()
    run = house.load_day(DAY1)
    assert run.batch and run.statement_ids == [f"{run.id}:1", f"{run.id}:2"]
    assert [s["ResultRows"] for s in run.describe()["SubStatements"]] == [0, 60]
    with pytest.raises(NoResultSetError):
        run.statements[1].get_statement_result()


def test_the_warehouse_persists_in_its_file(house: Lakehouse, glue, aws_env: str) -> None:
    house.set_up()
    house.load_day(DAY1)
    again = LocalRedshiftEngine(
        house.engine.path,
        glue,
        s3_endpoint_url=aws_env,
        region=REGION,
        access_key_id="testing",
        secret_access_key="testing",
    )
    assert again.execute_statement(f"SELECT count(*) FROM {TABLE}").statements[0].rows == [(60,)]
    assert again.external_schemas() == {"spectrum": house.database}


def test_a_dt_filter_reads_only_that_partition(house: Lakehouse, s3, glue) -> None:
    # a registered partition whose only file is not Parquet: a query that succeeds never opened it
    broken = house.lake.curated_features("2026-11-29") + "version=v2/"
    put(s3, broken + "part-00000.parquet", b"this is not parquet")
    catalog.register_partition(glue, house.database, "churn_features", "2026-11-29", location=broken)
    house.set_up()
    assert house.rows(f"SELECT count(*) FROM spectrum.churn_features WHERE dt = '{DAY2}'") == [(45,)]
    with pytest.raises(RedshiftEngineError, match="cannot read external table spectrum.churn_features"):
        house.rows("SELECT count(*) FROM spectrum.churn_features")


def test_external_schemas_are_declared_once_and_dropped(house: Lakehouse) -> None:
    house.set_up()
    create = render("create_external_schema.sql", **house.load(DAY1)).replace(" IF NOT EXISTS", "")
    with pytest.raises(RedshiftEngineError, match='Schema "spectrum" already exists'):
        house.engine.execute_statement(create)
    house.engine.execute_statement("DROP SCHEMA spectrum")
    assert house.engine.external_schemas() == {}
    with pytest.raises(RedshiftEngineError, match="spectrum.churn_features|spectrum"):
        house.rows("SELECT count(*) FROM spectrum.churn_features")
    missing = create.replace(f"'{house.database}'", "'no_such_database'")
    with pytest.raises(RedshiftEngineError, match="no_such_database' does not exist in the Glue"):
        house.engine.execute_statement(missing)
