"""Where a training job's ``CheckpointConfig`` lands in a local run, and which configs are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagelake.local.checkpoint_sync import CheckpointPlan, checkpoint_plan
from sagelake.local.training_runner import TrainingRequestError


def plan(config: dict | None) -> CheckpointPlan | None:
    request = {"TrainingJobName": "j"} if config is None else {"CheckpointConfig": config}
    return checkpoint_plan(request, error=TrainingRequestError)


def test_no_checkpoint_config_no_plan() -> None:
    assert plan(None) is None


def test_local_path_maps_into_the_work_dir_like_the_other_opt_ml_paths(tmp_path: Path) -> None:
    default = plan({"S3Uri": "s3://lake/checkpoints/job"})
    assert default == CheckpointPlan("s3://lake/checkpoints/job/", "/opt/ml/checkpoints")
    assert default.local_dir(tmp_path) == tmp_path / "checkpoints"
    custom = plan({"S3Uri": "s3://lake/c/job/", "LocalPath": "/opt/ml/state/ckpt/"})
    assert custom.local_dir(tmp_path) == tmp_path / "state" / "ckpt"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"S3Uri": "https://lake.s3.amazonaws.com/c/"}, "not an s3:// URI"),
        ({"S3Uri": "s3://lake/c/", "LocalPath": "/tmp/ckpt"}, "under /opt/ml"),
        ({"S3Uri": "s3://lake/c/", "LocalPath": "/opt/ml"}, "under /opt/ml"),
        ({"S3Uri": "s3://lake/c/", "LocalPath": "/opt/ml/../etc"}, "under /opt/ml"),
        ({"S3Uri": "s3://lake/c/", "LocalPath": "/opt/ml/model/ckpt"}, "other data"),
    ],
)
def test_configs_a_local_run_cannot_honour_are_refused(config: dict, message: str) -> None:
    with pytest.raises(TrainingRequestError, match=message):
        plan(config)
