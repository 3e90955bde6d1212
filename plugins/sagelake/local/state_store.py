"""The local control plane's state on disk: moto's backends pickled to one snapshot file, restored on start.

Everything moto holds (S3 objects and their versions, the Glue catalog, the SageMaker registry, models,
endpoint configs and endpoints, SQS queues and their messages, IAM, CloudWatch, SNS, Athena…) lives in
its ``BackendDict`` objects, one backend per service, account and region. :class:`StateStore` pickles
each backend on its own (one that cannot be pickled or restored costs that service, never the rest) into
``<state dir>/moto-state.pickle``:

* written atomically: a temp file in the same folder, fsynced, then renamed over the snapshot (the one
  before stays as ``moto-state.prev.pickle``), so a crash mid-write leaves the last good snapshot;
* a header line carries the payload's length and sha256: a truncated or damaged file is detected, set
  aside (``*.corrupt-<time>``) and the previous snapshot is restored instead; with neither readable the
  control plane starts empty and says so;
* taken every ``interval_s`` seconds when a request may have changed something, and once more on a clean
  stop: a crash (kill -9) loses at most the last ``interval_s`` seconds plus the time one snapshot takes.
  Reads change nothing (:func:`may_change`): GET/HEAD/OPTIONS, the ``Describe*``/``Get*``/``List*``…
  actions (:func:`request_action`), and an SQS ``ReceiveMessage`` that returned no message. So an idle
  stack, which still answers the endpoint server's and the SQS watcher's polls, takes no snapshot (each
  is a pickle of every backend: ≈0.3 s of CPU for a day's lake).

A snapshot is taken while requests are served (the server does not pause): each backend is pickled at
one moment, so a request in flight during the snapshot is either in it or in the next one.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pickle
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

SNAPSHOT = "moto-state.pickle"
PREVIOUS = "moto-state.prev.pickle"
STATS = "moto-state.json"
RESTORE_REPORT = "restore.json"
MAGIC = b"SAGELAKE-MOTO-STATE 1 "
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
# actions that only read (moto's reads recompute a managed status the same way each time, so none is lost)
_READ_ACTIONS = ("Describe", "Get", "List", "Search", "BatchGet", "Head")
_RECEIVE = "ReceiveMessage"  # SQS: changes a message it returns (in flight, received once more)
_FORM = "application/x-www-form-urlencoded"  # the query protocol's body (IAM, STS, SNS, CloudFormation)
_SMITHY_RPC = re.compile(r"^/service/[^/]+/operation/([^/]+)$")  # not an S3 key that merely contains it
_PICKLE_ATTEMPTS = 5  # a backend changed by a request while pickled ("changed size during iteration")

BackendKey = tuple[str, str, str, str]  # (module, BackendDict attribute, account, region)
# a BackendDict's own attributes; any other (S3's bucket_accounts) is state, kept under account ""
_BACKEND_DICT_OWN = frozenset({"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"})


class SnapshotError(ValueError):
    """A snapshot file that cannot be read back (truncated, damaged, not a snapshot)."""


@dataclass
class Restored:
    """What a start restored: from which file, how many backends, what was left out and why."""

    source: Path | None = None
    backends: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.source is None:
            return "state: no snapshot to restore, starting empty"
        return f"state: restored {self.backends} backends from {self.source} in {self.seconds:.2f}s"


@dataclass(frozen=True)
class Saved:
    """One snapshot written: where, its size, how long it took, and the backends left out."""

    path: Path
    size: int
    seconds: float
    backends: int
    skipped: tuple[str, ...] = ()


_LOCKS: dict[type, Callable[[], Any]] = {
    type(threading.Lock()): threading.Lock,
    type(threading.RLock()): threading.RLock,
    threading.Condition: threading.Condition,  # SQS queues wait on one for long polls
    threading.Semaphore: threading.Semaphore,
}


def _versioned_keys(cls: type, lists: list[tuple[str, list[Any]]], state: dict[str, Any]) -> Any:
    """An S3 bucket's key store rebuilt with every version of every key (see :class:`_Pickler`)."""
    store = cls()
    for key, versions in lists:
        dict.__setitem__(store, key, versions)
    store.__dict__.update(state)
    return store


class _Pickler(pickle.Pickler):
    """moto's backends as pickle cannot store them by default:

    * a lock becomes a new, free lock of its kind (nobody holds it after a restore);
    * an S3 bucket's key store (``_VersionedKeyStore``, a dict of version lists whose ``items()`` yields
      only the latest versions) keeps every version: pickled as is, the older versions would be lost.
    """

    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._key_store = _versioned_key_store()

    def reducer_override(self, obj: Any) -> Any:
        factory = _LOCKS.get(type(obj))
        if factory is not None:
            return factory, ()
        if isinstance(obj, self._key_store):
            return _versioned_keys, (type(obj), list(dict.items(obj)), dict(vars(obj)))
        return NotImplemented


def _versioned_key_store() -> type:
    from moto.s3.utils import _VersionedKeyStore

    return _VersionedKeyStore


def dumps(obj: Any) -> bytes:
    """``obj`` pickled, with its locks replaced by free ones."""
    buffer = io.BytesIO()
    _Pickler(buffer).dump(obj)
    return buffer.getvalue()


def _backend_dicts() -> list[Any]:
    from moto.core.base_backend import BackendDict

    return list(BackendDict._instances)


def _locate(backend_dict: Any) -> tuple[str, str] | None:
    """The module and attribute under which moto keeps ``backend_dict`` (e.g. moto.s3.models, s3_backends)."""
    module = importlib.import_module(backend_dict.backend.__module__)
    for name, value in vars(module).items():
        if value is backend_dict:
            return module.__name__, name
    return None


def collect() -> tuple[dict[BackendKey, bytes], list[str]]:
    """Every backend moto holds, pickled one by one; with the ones that could not be, as messages."""
    pickled: dict[BackendKey, bytes] = {}
    skipped: list[str] = []
    for backend_dict in _backend_dicts():
        where = _locate(backend_dict)
        if where is None:
            skipped.append(f"{backend_dict.service_name}: not found in {backend_dict.backend.__module__}")
            continue
        extras = {k: v for k, v in vars(backend_dict).items() if k not in _BACKEND_DICT_OWN}
        if extras:  # e.g. S3's bucket name → account map: without it, CreateBucket replaces a bucket
            try:
                pickled[(*where, "", "")] = dumps(extras)
            except Exception as error:  # noqa: BLE001 - reported like a backend
                skipped.append(f"{backend_dict.service_name} (shared): {error!r}"[:300])
        for account, region, backend in list(backend_dict.iter_backends()):
            key = (*where, account, region)
            for attempt in range(_PICKLE_ATTEMPTS):
                try:
                    pickled[key] = dumps(backend)
                    break
                except RuntimeError:  # mutated by a request while pickled: take it again
                    if attempt == _PICKLE_ATTEMPTS - 1:
                        skipped.append(f"{backend_dict.service_name} {account}/{region}: kept changing")
                except Exception as error:  # noqa: BLE001 - one service must not cost the others
                    skipped.append(f"{backend_dict.service_name} {account}/{region}: {error!r}"[:300])
                    break
    return pickled, skipped


def install(pickled: dict[BackendKey, bytes]) -> tuple[int, list[str]]:
    """Put each pickled backend back where moto looks it up; returns how many, and the failures."""
    restored, problems = 0, []
    for (module_name, attribute, account, region), blob in pickled.items():
        try:
            backend_dict = getattr(importlib.import_module(module_name), attribute)
            if not account:  # the service's shared attributes (see :func:`collect`)
                vars(backend_dict).update(pickle.loads(blob))
                continue
            dict.__setitem__(backend_dict[account], region, pickle.loads(blob))
            restored += 1
        except Exception as error:  # noqa: BLE001 - e.g. a moto upgrade changed that service's models
            problems.append(f"{module_name}.{attribute} {account}/{region} not restored: {error!r}"[:300])
    return restored, problems


def encode(pickled: dict[BackendKey, bytes], saved_at: float) -> Iterable[bytes]:
    """The file's bytes: a header line (length and sha256 of the payload), then the payload."""
    import moto

    payload = pickle.dumps(
        {"moto_version": moto.__version__, "saved_at": saved_at, "backends": pickled},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    meta = json.dumps({"length": len(payload), "sha256": hashlib.sha256(payload).hexdigest()})
    return [MAGIC + meta.encode() + b"\n", payload]


def decode(path: Path) -> dict[str, Any]:
    """A snapshot file's content; :class:`SnapshotError` if it is not a whole, undamaged snapshot."""
    with path.open("rb") as file:
        header = file.readline()
        if not header.startswith(MAGIC):
            raise SnapshotError(f"{path} is not a control-plane snapshot (no header)")
        try:
            meta = json.loads(header[len(MAGIC) :])
        except ValueError:
            raise SnapshotError(f"{path} has a damaged header") from None
        payload = file.read()
    if len(payload) != meta.get("length"):
        raise SnapshotError(f"{path} is truncated: {len(payload)} of {meta.get('length')} bytes")
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise SnapshotError(f"{path} is damaged: its checksum does not match")
    try:
        content = pickle.loads(payload)
    except Exception as error:  # noqa: BLE001 - a payload that passed the checksum but not unpickling
        raise SnapshotError(f"{path} cannot be unpickled: {error!r}") from None
    if not isinstance(content, dict) or "backends" not in content:
        raise SnapshotError(f"{path} holds no backends")
    return content


def write_atomically(path: Path, chunks: Iterable[bytes], previous: str | None = None) -> int:
    """Write ``chunks`` to ``path`` via a fsynced temp file renamed over it; the old file is renamed to
    ``previous`` first, if given. Returns the size written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    size = 0
    with tmp.open("wb") as file:
        for chunk in chunks:
            file.write(chunk)
            size += len(chunk)
        file.flush()
        os.fsync(file.fileno())
    if previous and path.exists():
        os.replace(path, path.with_name(previous))
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size


class StateStore:
    """Snapshots of the control plane's state in ``state_dir``: :meth:`restore` on start, :meth:`start`
    the periodic snapshots, :meth:`close` for the last one on a clean stop."""

    def __init__(self, state_dir: Path, interval_s: float = 10.0, log: Callable[[str], None] = print) -> None:
        self.state_dir = Path(state_dir)
        self.interval_s = interval_s
        self.log = log
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._saving = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.state_dir / SNAPSHOT

    def mark_changed(self) -> None:
        self._dirty.set()

    @property
    def changed(self) -> bool:
        """Whether a request may have changed the state since the last snapshot began."""
        return self._dirty.is_set()

    def restore(self) -> Restored:
        """Load the newest readable snapshot into moto's backends; report every file set aside."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        outcome = Restored()
        for stray in self.state_dir.glob(f".{SNAPSHOT}.*.tmp"):  # a write a crash interrupted
            outcome.problems.append(f"removed {stray.name}, an unfinished snapshot (the last good one stays)")
            stray.unlink(missing_ok=True)
        started = time.monotonic()
        for candidate in (self.path, self.state_dir / PREVIOUS):
            if not candidate.exists():
                continue
            try:
                content = decode(candidate)
            except (SnapshotError, OSError) as error:
                aside = candidate.with_name(f"{candidate.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
                os.replace(candidate, aside)
                outcome.problems.append(f"{error}; moved aside to {aside.name}")
                continue
            outcome.backends, failures = install(content["backends"])
            outcome.problems.extend(failures)
            if failures:  # keep what could not be restored, before the next snapshot replaces the file
                kept = candidate.with_name(f"{candidate.name}.unrestored-{time.strftime('%Y%m%dT%H%M%S')}")
                kept.write_bytes(candidate.read_bytes())
                outcome.problems.append(f"a copy of {candidate.name} is kept as {kept.name}")
            outcome.source = candidate
            break
        if outcome.source is None and outcome.problems:
            outcome.problems.append("no readable snapshot: the control plane starts EMPTY")
        outcome.seconds = time.monotonic() - started
        for problem in outcome.problems:
            self.log(f"state: {problem}")
        self.log(outcome.summary())
        report = {
            "source": str(outcome.source) if outcome.source else None,
            "backends": outcome.backends,
            "seconds": round(outcome.seconds, 3),
            "problems": outcome.problems,
            "summary": outcome.summary(),
        }
        write_atomically(self.state_dir / RESTORE_REPORT, [json.dumps(report).encode()])
        return outcome

    def save(self) -> Saved:
        """Take one snapshot now (atomic write); record its figures in ``moto-state.json``."""
        with self._saving:
            self._dirty.clear()  # a change during the snapshot marks it again, for the next one
            started = time.monotonic()
            pickled, skipped = collect()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            saved_at = time.time()
            size = write_atomically(self.path, encode(pickled, saved_at), previous=PREVIOUS)
            backends = sum(1 for key in pickled if key[2])  # not the services' shared attributes
            saved = Saved(self.path, size, time.monotonic() - started, backends, tuple(skipped))
            stats = {
                "saved_at": saved_at,
                "bytes": size,
                "seconds": round(saved.seconds, 3),
                "backends": backends,
                "skipped": list(skipped),
                "interval_s": self.interval_s,
            }
            write_atomically(self.state_dir / STATS, [json.dumps(stats).encode()])
            for problem in skipped:
                self.log(f"state: not in the snapshot: {problem}")
            return saved

    def start(self) -> None:
        """Snapshot every ``interval_s`` seconds while something may have changed."""
        self._thread = threading.Thread(target=self._run, name="state-snapshots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self._dirty.is_set():
                try:
                    self.save()
                except Exception as error:  # noqa: BLE001 - keep serving; the last good snapshot stays
                    self.log(f"state: snapshot failed, the previous one is kept: {error!r}")

    def close(self) -> Saved:
        """Stop the periodic snapshots and take the last one (after the server stopped serving)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.save()

    def wsgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """``app``, noting every request that may change state (:func:`may_change`)."""

        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            action = request_action(environ)
            if action == _RECEIVE:
                body = b"".join(app(environ, start_response))
                if received_messages(body):
                    self._dirty.set()
                return [body]
            if may_change(environ.get("REQUEST_METHOD", "GET"), action):
                self._dirty.set()
            return app(environ, start_response)

        return middleware


def request_action(environ: dict[str, Any]) -> str | None:
    """The AWS action a request names: a JSON-protocol ``X-Amz-Target`` (``AmazonSQS.ReceiveMessage``),
    a Smithy RPC v2 path (``/service/<service>/operation/GetMetricData``, CloudWatch) or a query-protocol
    ``Action`` (in the query string or the form body, which is read and put back for moto); None for REST
    calls (S3)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    rpc = _SMITHY_RPC.match(environ.get("PATH_INFO", ""))
    if rpc:
        return rpc.group(1)
    actions = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not actions and length and environ.get("CONTENT_TYPE", "").startswith(_FORM):
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return actions[0] if actions else None


def may_change(method: str, action: str | None) -> bool:
    """Whether a request may change the control plane's state: anything but a read (GET/HEAD/OPTIONS, or
    a ``Describe*``/``Get*``/``List*``… action); an action that cannot be told counts as a change."""
    if method in _READ_ONLY:
        return False
    return action is None or not action.startswith(_READ_ACTIONS)


def received_messages(body: bytes) -> bool:
    """Whether an SQS ``ReceiveMessage`` answer (JSON or XML) holds a message; True if it cannot be read."""
    try:
        return bool(json.loads(body).get("Messages"))
    except (ValueError, AttributeError):
        return not body.lstrip().startswith(b"<") or b"<Message>" in body


def read_stats(state_dir: Path, name: str = STATS) -> dict[str, Any] | None:
    """The figures of the last snapshot in ``state_dir`` (``moto-state.json``), or with ``name`` =
    :data:`RESTORE_REPORT` what the last start restored; None if there is none."""
    try:
        return json.loads((Path(state_dir) / name).read_text())
    except (OSError, ValueError):
        return None
