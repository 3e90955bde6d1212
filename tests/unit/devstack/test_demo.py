"""The local stack launcher: occupied ports, PID bookkeeping, stopping by recorded PID."""

from __future__ import annotations


def test_demo_refuses_the_aws_target_and_bad_dates(monkeypatch, capsys) -> None:
    from devstack import demo

    monkeypatch.setenv("SAGELAKE_TARGET", "aws")
    assert demo.main([]) == 1
    assert "unset SAGELAKE_TARGET" in capsys.readouterr().err
    monkeypatch.setenv("SAGELAKE_TARGET", "local")
    assert demo.main(["--dt", "2026-13-01"]) == 1
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_demo_summary_names_every_stage() -> None:
    from devstack.demo import format_summary

    text = format_summary(
        {
            "dt": "2026-11-26",
            "etl": {
                "customers_landed": 10,
                "events_landed": 90,
                "features_rows": 9,
                "events_cleaned": 80,
                "quarantined": 11,
                "quarantined_by_reason": {"outlier": 11},
            },
            "checks": [
                {
                    "name": "row_count",
                    "value": 9.0,
                    "expectation": "value >= 5",
                    "passed": True,
                    "severity": "error",
                },
                {
                    "name": "zero_event_share",
                    "value": 0.5,
                    "expectation": "value <= 0.2",
                    "passed": False,
                    "severity": "warn",
                },
            ],
            "model": {"training_job": "churn-20261126-abc", "metrics": {"auc": 0.8123}},
            "package": {"arn": "arn:aws:sagemaker:us-east-1:1:model-package/g/1", "status": "Approved"},
            "endpoint": {"name": "sagelake-churn", "status": "InService"},
            "prediction": {"input": {"plan": "basic"}, "output": {"churn_probability": 0.25, "churned": 0}},
        }
    )
    for expected in (
        "dt=2026-11-26",
        "customers=10",
        "feature rows=9",
        "quarantined  11",
        "PASS  row_count",
        "WARN  zero_event_share",
        "auc=0.8123",
        "model-package/g/1  status=Approved",
        "sagelake-churn  (InService)",
        '"churn_probability": 0.25',
    ):
        assert expected in text, expected
