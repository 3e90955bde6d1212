"""Local Python environments holding a SageMaker framework container's pinned versions.

A training, processing or serving container of SageMaker's scikit-learn image runs scikit-learn 1.4.2,
whatever the Airflow venv has. Locally, its scripts run on a venv built from :data:`FRAMEWORK_ENVS` (the
container's pins, plus what our scripts need) so that a script using a newer API fails here as on AWS.

- :func:`framework_for` maps an image URI to its :class:`FrameworkEnv`: ``None`` for an image with no
  environment here (the XGBoost image, a custom image: they run on the Airflow venv), a
  :class:`FrameworkEnvError` for a version of a known framework that has no pins.
- :func:`ensure_env` builds the venv with uv under :func:`sagelake.config.settings.framework_envs_dir`,
  once: a stamp holds the hash of its pins (changed pins → rebuilt), a file lock keeps parallel jobs
  from building it twice, and a built venv is reused with no network call.
- ``SAGELAKE_LOCAL_FRAMEWORK_ENVS=false`` (:func:`sagelake.config.settings.local_framework_envs`) falls
  back to the Airflow venv.

A venv runs the container's Python version (3.10) when this machine has it (on ``PATH`` or under pyenv),
else this interpreter's (3.11): its stamp and the failed-job note say which. ``python -m
sagelake.local.framework_env`` builds every environment (``make venv`` runs it).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sagelake.config.settings import framework_envs_dir, local_framework_envs

log = logging.getLogger(__name__)

STAMP = "sagelake-env.json"
PYTHON_NAMES = ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}")
BUILD_TIMEOUT_SECONDS = 900
_IMAGE = re.compile(r"^(?:[^/]+/)?(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>.+))?$")


class FrameworkEnvError(Exception):
    """An image of a known framework with no environment here, or an environment that cannot be built."""


@dataclass(frozen=True)
class FrameworkEnv:
    """One container's framework: its ECR repository, version tag prefix, pinned requirements and the
    container's Python version."""

    repository: str
    version: str
    requirements: tuple[str, ...]
    python: str = "3.10"

    @property
    def name(self) -> str:
        """The venv's directory name, e.g. ``sagemaker-scikit-learn-1.4-2``."""
        return f"{self.repository}-{self.version}"

    @property
    def digest(self) -> str:
        """Hash of what the venv is built from: its pins and the container's Python version."""
        source = json.dumps([self.requirements, self.python])
        return hashlib.sha256(source.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """``sagemaker-scikit-learn:1.4-2 (scikit-learn==1.4.2, numpy==2.1.0, ...; Python 3.10.13)``."""
        python = f"Python {built_python(self) or '?'}"
        return f"{self.repository}:{self.version} ({', '.join(self.requirements[:5])}, ...; {python})"


# sagemaker-scikit-learn:1.4-2 (aws/sagemaker-scikit-learn-container, docker/1.4-2): the base image pins
# numpy==2.1.0, scikit-learn==1.4.2, pyarrow==17.0.0; the final image adds scipy>=1.9.0 and pandas>=1.5.0
# unpinned (pinned here to releases of that time with numpy 2.1 support and Python 3.11 wheels);
# joblib and threadpoolctl as scikit-learn 1.4.2 needs them. The container has no matplotlib:
# include/evaluation/evaluate.py installs MATPLOTLIB_REQUIREMENT (3.9.4) at run time, pre-installed
# here with its dependencies so that local runs need no network.
SKLEARN_1_4_2 = FrameworkEnv(
    repository="sagemaker-scikit-learn",
    version="1.4-2",
    requirements=(
        "scikit-learn==1.4.2",
        "numpy==2.1.0",
        "pandas==2.2.3",
        "scipy==1.14.1",
        "pyarrow==17.0.0",
        "joblib==1.4.2",
        "threadpoolctl==3.5.0",
        "python-dateutil==2.9.0.post0",
        "pytz==2024.2",
        "tzdata==2024.2",
        "six==1.16.0",
        "matplotlib==3.9.4",
        "contourpy==1.3.1",
        "cycler==0.12.1",
        "fonttools==4.55.3",
        "kiwisolver==1.4.7",
        "packaging==24.2",
        "pillow==11.0.0",
        "pyparsing==3.2.0",
    ),
)
FRAMEWORK_ENVS: tuple[FrameworkEnv, ...] = (SKLEARN_1_4_2,)


def parse_image(image_uri: str) -> tuple[str, str | None]:
    """``(repository, tag)`` of an image URI: ``…/sagemaker-scikit-learn:1.4-2-cpu-py3`` →
    ``("sagemaker-scikit-learn", "1.4-2-cpu-py3")``; the tag is ``None`` for a digest-only URI."""
    match = _IMAGE.match(image_uri.strip())
    if not match:
        raise FrameworkEnvError(f"{image_uri!r} is not an image URI")
    return match.group("repo").rsplit("/", 1)[-1], match.group("tag")


def framework_for(image_uri: str | None) -> FrameworkEnv | None:
    """The framework environment of ``image_uri``; ``None`` for an image this module has none for.

    Raises :class:`FrameworkEnvError` for an image of a framework listed here in a version that is not
    (running it on other versions is the mismatch this module exists to catch).
    """
    if not image_uri:
        return None
    repository, tag = parse_image(image_uri)
    known = [env for env in FRAMEWORK_ENVS if env.repository == repository]
    if not known:
        return None
    for env in known:
        if tag == env.version or (tag or "").startswith(f"{env.version}-"):
            return env
    versions = ", ".join(env.version for env in known)
    raise FrameworkEnvError(
        f"no local environment for {repository}:{tag or '<digest>'} (this project has {versions}): "
        "add its pins to sagelake.local.framework_env.FRAMEWORK_ENVS, name the image by tag, or set "
        "SAGELAKE_LOCAL_FRAMEWORK_ENVS=false to run it on the Airflow venv's versions"
    )


def env_dir(env: FrameworkEnv) -> Path:
    return framework_envs_dir() / env.name


def env_python(env: FrameworkEnv) -> Path:
    return env_dir(env) / "bin" / "python"


def _stamp(env: FrameworkEnv) -> dict:
    try:
        return json.loads((env_dir(env) / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def is_built(env: FrameworkEnv) -> bool:
    """Whether the venv exists and was built from ``env``'s current pins."""
    return _stamp(env).get("digest") == env.digest and env_python(env).exists()


def built_python(env: FrameworkEnv) -> str | None:
    """The Python version the venv was built on (``3.10.13``), ``None`` before it is built."""
    return _stamp(env).get("python")


def base_python(env: FrameworkEnv) -> tuple[str, str]:
    """``(interpreter, version)`` to build the venv on: the container's Python version where this machine
    has it (``python3.10`` on ``PATH``, else under pyenv), else this interpreter."""
    name = f"python{env.python}"
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(glob.glob(str(pyenv / "versions" / f"{env.python}.*" / "bin" / name)), reverse=True)
    probe = "import sys; print('.'.join(map(str, sys.version_info[:3])))"
    for candidate in filter(None, [shutil.which(name), *found]):
        try:
            proc = subprocess.run([candidate, "-c", probe], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0 and proc.stdout.strip().startswith(f"{env.python}."):
            return candidate, proc.stdout.strip()
    return sys.executable, sys.version.split()[0]


def uv_binary() -> str:
    """uv beside this interpreter (the project venv's, installed by ``make venv``), else on ``PATH``."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if not found:
        raise FrameworkEnvError("uv is not installed: run `make venv` (it installs uv into .venv/bin)")
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(
        cmd, capture_output=True, text=True, env=environment, timeout=BUILD_TIMEOUT_SECONDS, check=False
    )


def _build(env: FrameworkEnv, directory: Path) -> None:
    uv = uv_binary()
    python, version = base_python(env)
    if not version.startswith(f"{env.python}."):
        log.warning("no Python %s (the container's) here: %s is built on %s", env.python, env.name, version)
    shutil.rmtree(directory, ignore_errors=True)
    created = _run([uv, "venv", "--quiet", "--python", python, str(directory)])
    if created.returncode != 0:
        raise FrameworkEnvError(f"cannot create the {env.name} venv: {created.stderr.strip()}")
    install = [uv, "pip", "install", "--quiet", "--python", str(directory / "bin" / "python")]
    proc = _run([*install, "--offline", *env.requirements])  # from uv's cache when it has them all
    if proc.returncode != 0:
        proc = _run([*install, *env.requirements])
    if proc.returncode != 0:
        raise FrameworkEnvError(f"cannot install the {env.name} pins: {proc.stderr.strip()[-2000:]}")
    stamp = {"digest": env.digest, "requirements": list(env.requirements), "python": version}
    (directory / STAMP).write_text(json.dumps(stamp, indent=1))


def ensure_env(env: FrameworkEnv) -> Path:
    """The venv of ``env`` (built now if missing or built from other pins); its directory."""
    directory = env_dir(env)
    if is_built(env):
        return directory
    with _locked(directory.with_name(f"{env.name}.lock")):
        if not is_built(env):  # another process may have built it while this one waited
            started = time.monotonic()
            log.info("building the %s:%s environment in %s", env.repository, env.version, directory)
            _build(env, directory)
            log.info("built the %s environment in %.1fs", env.name, time.monotonic() - started)
    return directory


def framework_python(image_uri: str | None) -> Path | None:
    """The Python of ``image_uri``'s framework venv (built if needed); ``None`` when it has none."""
    env = framework_for(image_uri)
    if env is None:
        return None
    ensure_env(env)
    return env_python(env)


def interpreter_for(image_uri: str | None) -> Path | None:
    """The Python that runs ``image_uri``'s code locally: its framework venv's, or ``None`` for the
    Airflow venv's (no environment for that image, or ``SAGELAKE_LOCAL_FRAMEWORK_ENVS`` is false)."""
    return framework_python(image_uri) if local_framework_envs() else None


def container_command(cmd: list[str], image_uri: str | None) -> tuple[list[str], FrameworkEnv | None]:
    """``cmd`` with its Python (this interpreter or ``python3``) replaced by ``image_uri``'s framework
    venv's, and that framework; ``cmd`` unchanged and ``None`` when the Airflow venv runs it."""
    if not cmd or (cmd[0] != sys.executable and Path(cmd[0]).name not in PYTHON_NAMES):
        return list(cmd), None
    python = interpreter_for(image_uri)
    if python is None:
        return list(cmd), None
    return [str(python), *cmd[1:]], framework_for(image_uri)


def main(argv: list[str] | None = None) -> int:
    """Build every framework environment (``make venv``); print each one's directory."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for env in FRAMEWORK_ENVS:
        started = time.monotonic()
        print(f"{env.name}: {ensure_env(env)} ({time.monotonic() - started:.1f}s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
