"""Model and code artefacts as SageMaker lays them out: tarballs of a directory, files inside them.

Neutral helpers used on both targets (the DAG's request builders and lifecycle steps) and by the local
engines (training runner, endpoint server).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from sagelake.lake.layout import split_s3_uri

EXCLUDED_NAMES = {"__pycache__", ".git", ".pytest_cache", ".ruff_cache"}


def _tar_entries(directory: Path) -> list[Path]:
    entries = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part in EXCLUDED_NAMES for part in rel.parts) or path.suffix == ".pyc":
            continue
        entries.append(path)
    return entries


def package_source_dir(source_dir: Path) -> bytes:
    """A deterministic ``.tar.gz`` of ``source_dir`` (sorted entries, fixed mtimes and owners)."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(f"source dir {source_dir} does not exist")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _tar_entries(source_dir):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(source_dir).as_posix())
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def extract_tar(data: bytes, dest: Path) -> None:
    """Extract a (gzipped) tarball safely into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(dest, filter="data")


def read_evaluation(s3_client: Any, output_tar_uri: str) -> dict[str, Any]:
    """Read ``evaluation.json`` from a training job's ``output.tar.gz``."""
    bucket, key = split_s3_uri(output_tar_uri)
    data = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.removeprefix("./") == "evaluation.json":
                return json.loads(tar.extractfile(member).read())
    raise FileNotFoundError(f"{output_tar_uri} holds no evaluation.json: the training script must write it")


def beside_model(model_url: str, name: str) -> str:
    """The URI of file ``name`` in the same S3 folder as a training job's ``model.tar.gz``."""
    if not model_url.endswith("/model.tar.gz"):
        raise ValueError(f"unexpected model artefact URI {model_url!r}: expected …/output/model.tar.gz")
    return model_url.removesuffix("model.tar.gz") + name


def output_tar_uri(model_url: str) -> str:
    """SageMaker writes ``output.tar.gz`` beside ``model.tar.gz``."""
    return beside_model(model_url, "output.tar.gz")
