"""SageMaker's checkpoint sync for the local training engines (``CheckpointConfig`` of a training job).

As on SageMaker: before the container starts, what is under ``CheckpointConfig.S3Uri`` is copied into the
local checkpoint dir (``LocalPath``, default ``/opt/ml/checkpoints``, mapped to ``<work>/checkpoints`` like
the other ``/opt/ml`` paths); while it runs, files written there are uploaded as they appear or change
and files deleted there are deleted from S3; a last pass runs when the container ends, however it ends
(a killed or timed-out run keeps its checkpoints in S3). Files ending in ``.sagemaker-ignore`` (temporary
files, renamed when complete) and the ``.sagemaker-uploading``/``.sagemaker-uploaded`` markers are not
uploaded, as on SageMaker. Files put in S3 after the start are neither copied in nor deleted.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sagelake.lake.layout import split_s3_uri
from sagelake.local.s3_files import download_prefix
from sagelake.ml.spot import CHECKPOINT_LOCAL_PATH

log = logging.getLogger(__name__)

CONTAINER_ROOT = PurePosixPath("/opt/ml")
LOCAL_DIR_ENV = "SM_CHECKPOINT_DIR"  # tells a local script where LocalPath is mapped
CONFIG_FILE = "checkpointconfig.json"  # SageMaker's /opt/ml/input/config/checkpointconfig.json
NOT_SYNCED_SUFFIXES = (".sagemaker-ignore", ".sagemaker-uploading", ".sagemaker-uploaded")
RESERVED_DIRS = ("input", "model", "output", "code")  # /opt/ml folders the engines use for other things
SYNC_INTERVAL_S = 0.25


@dataclass(frozen=True)
class CheckpointPlan:
    """A request's ``CheckpointConfig``: the S3 prefix (ending in ``/``) and the container's local path."""

    s3_uri: str
    local_path: str

    def local_dir(self, work: Path) -> Path:
        """Where ``local_path`` is in a local run's ``work`` dir (``/opt/ml/x`` is ``<work>/x``)."""
        relative = PurePosixPath(self.local_path).relative_to(CONTAINER_ROOT)
        return Path(work, *relative.parts)


def checkpoint_plan(request: dict, *, error: type[Exception]) -> CheckpointPlan | None:
    """The request's :class:`CheckpointPlan`, None without ``CheckpointConfig``; ``error`` for an S3Uri that
    is not ``s3://`` or a LocalPath outside ``/opt/ml`` (or on a folder the engines use)."""
    config = request.get("CheckpointConfig")
    if not config:
        return None
    uri = str(config.get("S3Uri") or "")
    if not uri.startswith("s3://"):
        raise error(f"CheckpointConfig.S3Uri {uri!r} is not an s3:// URI: only S3 checkpoints run locally")
    split_s3_uri(uri.rstrip("/") + "/")
    local = PurePosixPath(str(config.get("LocalPath") or CHECKPOINT_LOCAL_PATH))
    if not local.is_relative_to(CONTAINER_ROOT) or local == CONTAINER_ROOT or ".." in local.parts:
        raise error(
            f"CheckpointConfig.LocalPath {str(local)!r} must be a folder under /opt/ml to run locally"
        )
    if local.relative_to(CONTAINER_ROOT).parts[0] in RESERVED_DIRS:
        raise error(
            f"CheckpointConfig.LocalPath {str(local)!r} is a folder SageMaker uses for other data: "
            f"use {CHECKPOINT_LOCAL_PATH}"
        )
    return CheckpointPlan(s3_uri=uri.rstrip("/") + "/", local_path=str(local))


def write_checkpoint_config(config_dir: Path, plan: CheckpointPlan | None, local_dir: Path | None) -> None:
    """Write ``input/config/checkpointconfig.json`` as SageMaker does (``LocalPath`` the mapped local dir)."""
    if plan is None or local_dir is None:
        return
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / CONFIG_FILE).write_text(json.dumps({"LocalPath": str(local_dir), "S3Uri": plan.s3_uri}))


class CheckpointSync:
    """Mirror a local checkpoint dir to an S3 prefix: :meth:`restore` once, then :meth:`start`/:meth:`stop`
    (a background thread syncing every ``interval`` seconds; :meth:`stop` runs the last pass)."""

    def __init__(self, s3: Any, local_dir: Path, s3_uri: str, interval: float = SYNC_INTERVAL_S) -> None:
        self.s3 = s3
        self.local_dir = Path(local_dir)
        self.bucket, self.prefix = split_s3_uri(s3_uri.rstrip("/") + "/")
        self.interval = interval
        self.uploaded = 0
        self.deleted = 0
        self._synced: dict[str, tuple[int, int]] = {}  # relative key -> (size, mtime_ns) in S3
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def restore(self) -> int:
        """Empty the local dir, copy the S3 prefix into it; return how many files."""
        shutil.rmtree(self.local_dir, ignore_errors=True)
        count = download_prefix(self.s3, f"s3://{self.bucket}/{self.prefix}", self.local_dir)
        self._synced = self._local_files()
        return count

    def _local_files(self) -> dict[str, tuple[int, int]]:
        files = {}
        if not self.local_dir.is_dir():
            return files
        for path in self.local_dir.rglob("*"):
            if path.name.endswith(NOT_SYNCED_SUFFIXES):
                continue
            try:
                if not path.is_file():
                    continue
                stat = path.stat()
            except FileNotFoundError:  # deleted while listed
                continue
            files[path.relative_to(self.local_dir).as_posix()] = (stat.st_size, stat.st_mtime_ns)
        return files

    def sync_once(self) -> None:
        """Upload new and changed files, then delete from S3 what was deleted locally."""
        current = self._local_files()
        for name, signature in sorted(current.items()):
            if self._synced.get(name) == signature:
                continue
            try:
                body = (self.local_dir / name).read_bytes()
            except FileNotFoundError:
                current.pop(name)
                continue
            self.s3.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body)
            self._synced[name] = signature
            self.uploaded += 1
        for name in sorted(set(self._synced) - set(current)):
            self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + name)
            del self._synced[name]
            self.deleted += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync_once()
            except Exception:  # noqa: BLE001 - keep syncing; the last pass reports for real
                log.warning("checkpoint sync to s3://%s/%s failed; retrying", self.bucket, self.prefix)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="checkpoint-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and run the last pass (errors propagate)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sync_once()


@contextmanager
def synced_checkpoints(s3: Any, plan: CheckpointPlan | None, work: Path, job: str) -> Iterator[Path | None]:
    """Restore ``plan``'s checkpoints into ``work`` and sync them while the block runs (a last pass on
    exit, however it exits); yield the local checkpoint dir, None without a plan."""
    if plan is None:
        yield None
        return
    local_dir = plan.local_dir(work)
    sync = CheckpointSync(s3, local_dir, plan.s3_uri)
    restored = sync.restore()
    log.info("training job %s: %d checkpoint file(s) restored from %s", job, restored, plan.s3_uri)
    sync.start()
    try:
        yield local_dir
    except BaseException:
        try:
            sync.stop()
        except Exception:  # noqa: BLE001 - the block's own error is the one to report
            log.exception("training job %s: last checkpoint sync to %s failed", job, plan.s3_uri)
        raise
    sync.stop()
    log.info(
        "training job %s: checkpoints synced to %s (%d upload(s), %d deletion(s))",
        job,
        plan.s3_uri,
        sync.uploaded,
        sync.deleted,
    )
