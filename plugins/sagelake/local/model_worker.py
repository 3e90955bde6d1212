"""One served model in its own process: the framework container's side of the local endpoint server.

``python -I model_worker.py <model dir>`` runs on the model image's framework venv
(:mod:`sagelake.local.framework_env`), so a model is loaded and served with the container's versions,
not the Airflow venv's. It imports nothing but the standard library and the model's
``code/inference.py``: it loads the model once (``model_fn``), then answers requests on stdin with
``input_fn → predict_fn → output_fn`` on stdout.

Framing, both ways: one JSON header line, then ``length`` bytes of body. Requests carry
``content_type`` and ``accept``; replies ``ok`` and ``content_type``, or ``ok: false`` and ``error``.
The first reply (no request) says whether the model loaded. What the inference code prints goes to
stderr (the server's log): stdout is the channel.

``python -I model_worker.py --spare`` is a warm spare: it imports what framework inference code
usually needs (:data:`PRELOAD`, each if installed), says so (``{"ok": true, "spare": true}``), then waits
for one ``{"directory": ...}`` message and serves that model as above. The server keeps one ready, so
a newly deployed model is served in the time of its ``model_fn``, not of a fresh interpreter's imports.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

MODULE_NAME = "sagelake_served_inference"
SPARE = "--spare"
PRELOAD = (
    "numpy",
    "pandas",
    "joblib",
    "sklearn",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.ensemble",
)


def write_message(stream: BinaryIO, header: dict[str, Any], body: bytes = b"") -> None:
    """One frame: ``header`` (plus ``length``) as a JSON line, then ``body``."""
    stream.write(json.dumps({**header, "length": len(body)}).encode() + b"\n" + body)
    stream.flush()


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """One frame from ``stream``: ``(header, body)``; ``None`` at end of stream."""
    line = stream.readline()
    if not line:
        return None
    header = json.loads(line)
    body = stream.read(int(header.get("length") or 0))
    return header, body


def load(directory: Path) -> tuple[Any, Any]:
    """``(inference module, model)`` of an extracted model archive (``code/`` on the path, as the
    container puts it)."""
    script = directory / "code" / "inference.py"
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module, module.model_fn(str(directory))


def predict(module: Any, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    """One invocation through the inference handlers: ``(payload, response content type)``."""
    data = module.input_fn(body, content_type)
    prediction = module.predict_fn(data, model)
    result = module.output_fn(prediction, accept)
    payload, response_type = result if isinstance(result, tuple) else (result, accept)
    payload = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    return payload, response_type or accept


def _error(exc: BaseException) -> str:
    traceback.print_exc(file=sys.stderr)
    return f"{type(exc).__name__}: {exc}"


def serve(directory: Path, requests: BinaryIO, replies: BinaryIO) -> int:
    """Load the model, report it, answer requests until stdin closes."""
    try:
        module, model = load(directory)
    except BaseException as exc:  # the model's failure, reported to the server
        write_message(replies, {"ok": False, "error": _error(exc)})
        return 1
    write_message(replies, {"ok": True, "python": sys.version.split()[0]})
    while (message := read_message(requests)) is not None:
        header, body = message
        try:
            payload, response_type = predict(module, model, body, header["content_type"], header["accept"])
        except Exception as exc:
            write_message(replies, {"ok": False, "error": _error(exc)})
            continue
        write_message(replies, {"ok": True, "content_type": response_type}, payload)
    return 0


def warm_up(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import ``modules`` (those installed); returns the ones imported."""
    imported = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        imported.append(name)
    return imported


def serve_spare(requests: BinaryIO, replies: BinaryIO) -> int:
    """Warm up, say so, wait for the model directory to serve (end of stream: exit)."""
    write_message(replies, {"ok": True, "spare": True, "preloaded": warm_up()})
    message = read_message(requests)
    if message is None:
        return 0
    directory = Path(message[0]["directory"])
    os.chdir(directory)
    return serve(directory, requests, replies)


def main(argv: list[str]) -> int:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints of the inference code: to the log
    sys.stdout = sys.stderr
    if argv[0] == SPARE:
        return serve_spare(sys.stdin.buffer, replies)
    return serve(Path(argv[0]), sys.stdin.buffer, replies)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
