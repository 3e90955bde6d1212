"""Constants shared by the tests, defined once."""

from __future__ import annotations

from sagelake.config.settings import CHECKS_DIR, GLUE_SCRIPT, PROJECT_ROOT, TRAINING_DIR

ROOT = PROJECT_ROOT
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
SAGEMAKER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sagemaker"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn"
SKLEARN_IMAGE_URI = f"{SKLEARN_IMAGE}:1.4-2-cpu-py3"

__all__ = [
    "ACCOUNT_ID",
    "CHECKS_DIR",
    "GLUE_SCRIPT",
    "REGION",
    "ROOT",
    "SAGEMAKER_ROLE_ARN",
    "SKLEARN_IMAGE",
    "SKLEARN_IMAGE_URI",
    "TRAINING_DIR",
]
