"""The local Athena engine without servers: result-file rendering, argument checks, statement errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sagelake.local.athena.engine import LocalAthenaEngine, QueryResult
from sagelake.local.athena.errors import AthenaSyntaxError, UnsupportedAthenaFeatureError
from tests.support.constants import REGION


@pytest.fixture()
def glue() -> Iterator[Any]:
    """A Glue client that answers nothing: any call to it fails the test (unit tests have no catalog)."""
    client = boto3.client(
        "glue", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client
        stubber.assert_no_pending_responses()


@pytest.fixture()
def database() -> str:
    return "sagelake_unit"


@pytest.fixture()
def engine(glue) -> Iterator[LocalAthenaEngine]:
    with LocalAthenaEngine(
        glue, s3_endpoint_url=None, region=REGION, access_key_id="testing", secret_access_key="testing"
    ) as engine:
        yield engine


def test_endpoint_url_is_validated(glue) -> None:
    with pytest.raises(ValueError, match="s3_endpoint_url"):
        LocalAthenaEngine(
            glue, s3_endpoint_url="localhost:4566", region=REGION, access_key_id="a", secret_access_key="b"
        )


def test_statement_errors(engine, database) -> None:
    with pytest.raises(AthenaSyntaxError, match="exactly one SQL statement, got 2"):
        engine.execute("SELECT 1; SELECT 2", database)
    with pytest.raises(AthenaSyntaxError, match="SYNTAX_ERROR: line 1"):
        engine.execute("SELECT (1 FROM churn_features", database)
    with pytest.raises(UnsupportedAthenaFeatureError, match="DROP"):
        engine.execute("DROP TABLE churn_features", database)
    with pytest.raises(UnsupportedAthenaFeatureError, match="CREATE VIEW"):
        engine.execute("CREATE VIEW v AS SELECT * FROM churn_features", database)
    with pytest.raises(AthenaSyntaxError, match="got 0"):
        engine.execute("  ;", database)
    assert engine.execute("SELECT 1 AS one;", database).rows == [(1,)]


def test_query_result_csv_is_athena_format() -> None:
    result = QueryResult(
        columns=["name", "n", "ratio", "ok", "day", "note"],
        rows=[
            ('say "hi", ok', 3, 0.25, True, dt.date(2026, 11, 26), None),
            ("", -1, 1e-07, False, dt.datetime(2026, 1, 2, 3, 4, 5, 678000), "x"),
        ],
    )
    text = result.to_csv().decode()
    assert text.splitlines() == [
        '"name","n","ratio","ok","day","note"',
        '"say ""hi"", ok","3","0.25","true","2026-11-26",',
        '"","-1","1e-07","false","2026-01-02 03:04:05.678","x"',
    ]
    assert QueryResult(columns=["a"], rows=[]).to_csv() == b'"a"\n'
