"""The environment of code the pipeline runs on the user's behalf: only what its AWS counterpart would get.

A Glue job, a training, processing or transform container, a model server on AWS sees its job's contract
(arguments, ``SM_*`` variables, the request's ``Environment``) and its role's credentials, never the
orchestrator's settings. Locally these run as subprocesses of an Airflow task (or of the endpoint server),
whose environment holds Airflow's secrets (``AIRFLOW__*``, ``AIRFLOW_CONN_*`` such as the webhook's key) and
the ``SAGELAKE_*`` settings. :func:`job_environment` builds every such subprocess's environment from an
allow-list of the parent's variables plus the job's contract; nothing else is inherited.

Allowed from the parent (:data:`ALLOWED`): what an interpreter needs to run (``PATH``, ``HOME``, the
locale, the temporary directory, ``JAVA_HOME`` for Spark, CA bundles), the math libraries' thread counts,
and the ``AWS_*`` variables the local control plane needs (endpoint URLs, region, its placeholder keys).
``PYTHONPATH`` is not inherited: a runner that needs one sets it in the contract.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping

# Shell-style patterns of the parent's variables a job may see.
ALLOWED: tuple[str, ...] = (
    # the interpreter and its OS
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "JAVA_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NO_PROXY",
    "no_proxy",
    # math libraries' threads (the tuning runner shares the CPUs among trials through these)
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    # the local control plane: where it is, the region, its placeholder credentials
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_*",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CA_BUNDLE",
)


def allowed(name: str, extra_allowed: Iterable[str] = ()) -> bool:
    """Whether the parent's variable ``name`` may be passed to a job (:data:`ALLOWED` or ``extra_allowed``,
    shell-style patterns, case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in (*ALLOWED, *extra_allowed))


def job_environment(
    contract: Mapping[str, str],
    *,
    extra_allowed: Iterable[str] = (),
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a job subprocess: the allowed variables of ``base`` (default: this process's
    environment), then ``contract`` (the job's own variables, which win and are passed whatever their
    name). ``extra_allowed``: more patterns of ``base`` this kind of job needs."""
    parent = os.environ if base is None else base
    patterns = tuple(extra_allowed)
    environment = {name: value for name, value in parent.items() if allowed(name, patterns)}
    environment.update({str(name): str(value) for name, value in contract.items()})
    return environment
