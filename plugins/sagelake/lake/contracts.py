"""Schema contracts of the raw datasets, declared once as data files in ``include/contracts/<dataset>.json``.

A contract names a raw dataset, its file format (``csv`` with a header row, or ``jsonl``: one JSON object per
line), whether an empty day is legitimate (``allow_empty``, default false) and its columns in order::

    {"dataset": "raw_customers", "format": "csv", "allow_empty": false, "description": "...",
     "columns": [{"name": "customer_id", "type": "string", "required": true, "nullable": false,
                  "description": "..."}, ...]}

Per column (``name``, ``type``, ``required`` and ``nullable`` are mandatory, ``description`` optional):

* ``type``: a Glue/Hive type: ``string boolean tinyint smallint int bigint float double date timestamp`` or
  ``decimal(p,s)``. In a CSV every value is cast from text (``date`` is ``yyyy-MM-dd``); a non-empty value
  that does not cast makes the row malformed (quarantined, not loaded).
* ``required``: the column must be present in every file (CSV: in the header row, matched by name,
  case-sensitively; JSON lines: as a key of at least one sampled record). A file without it fails the load.
  A column that is not required and absent is loaded as nulls. Columns in a file but not in the contract are
  schema drift: tolerated and reported in the ETL metrics.
* ``nullable``: whether a loaded row may hold a null there. ``false``: a row whose value is null (an empty
  CSV field, a missing or null JSON key) is quarantined by the job, never loaded and never a job failure:
  with reason ``missing_<column>`` where the job defines one (``missing_customer_id``, ``missing_churned``),
  else the dataset's generic reason (``invalid_customer``, ``invalid_event``). ``true``: nulls are loaded
  (and possibly imputed, e.g. ``age``). The job's own rules (its key and label) apply whatever this says.

Plain functions, no Airflow: :func:`load_contracts` for the DAG and the catalog, :meth:`Contract.glue_columns`
for Glue table definitions, :func:`to_job_argument` for the Glue job's ``--contracts`` argument (the job
script is self-contained and re-validates what it receives).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelake.config.settings import INCLUDE_DIR

DEFAULT_CONTRACTS_DIR = INCLUDE_DIR / "contracts"
FORMATS = ("csv", "jsonl")
PRIMITIVE_TYPES = (
    "string",
    "boolean",
    "tinyint",
    "smallint",
    "int",
    "bigint",
    "float",
    "double",
    "date",
    "timestamp",
)
_DECIMAL = re.compile(r"^decimal\((\d{1,2}),(\d{1,2})\)$")
_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # Glue lower-cases names; no leading "_" (the job's own)
GLUE_COMMENT_MAX = 255
CONTRACT_KEYS = ("dataset", "description", "format", "allow_empty", "columns")
COLUMN_KEYS = ("name", "type", "required", "nullable", "description")
_MANDATORY_CONTRACT_KEYS = ("dataset", "format", "columns")
_MANDATORY_COLUMN_KEYS = ("name", "type", "required", "nullable")


class ContractError(ValueError):
    """An invalid contract (file or ``--contracts``); the message is one line naming it and the field."""


@dataclass(frozen=True)
class ContractColumn:
    """One column of a raw dataset."""

    name: str
    type: str
    required: bool
    nullable: bool
    description: str = ""

    def glue_column(self) -> dict[str, str]:
        column = {"Name": self.name, "Type": self.type}
        if self.description:
            column["Comment"] = self.description
        return column


@dataclass(frozen=True)
class Contract:
    """The schema contract of one raw dataset (see the module doc)."""

    dataset: str
    format: str
    columns: tuple[ContractColumn, ...]
    allow_empty: bool = False
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> ContractColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"contract {self.dataset} has no column {name!r}")

    def column_types(self) -> list[tuple[str, str]]:
        """``[(name, type), ...]`` in order (the shape of ``catalog.RAW_*_COLUMNS``)."""
        return [(column.name, column.type) for column in self.columns]

    def glue_columns(self) -> list[dict[str, str]]:
        """The Glue ``StorageDescriptor.Columns`` list (``Name``, ``Type``, ``Comment`` when described)."""
        return [column.glue_column() for column in self.columns]

    def job_spec(self) -> dict[str, Any]:
        """What the Glue job needs of this contract (descriptions left out)."""
        return {
            "format": self.format,
            "allow_empty": self.allow_empty,
            "columns": [
                {"name": c.name, "type": c.type, "required": c.required, "nullable": c.nullable}
                for c in self.columns
            ],
        }


def is_glue_type(type_name: str) -> bool:
    """Whether ``type_name`` is one of the supported Glue/Hive column types (lower case, no spaces)."""
    if type_name in PRIMITIVE_TYPES:
        return True
    match = _DECIMAL.match(type_name)
    return bool(match) and 1 <= int(match[1]) <= 38 and int(match[2]) <= int(match[1])


def _fail(source: str, field: str, problem: str) -> ContractError:
    return ContractError(f"{source}: {field}: {problem}")


def _check_keys(
    data: dict, allowed: tuple[str, ...], mandatory: tuple[str, ...], source: str, at: str
) -> None:
    for key in data:
        if key not in allowed:
            field = f"{at}.{key}" if at else str(key)
            raise _fail(source, field, f"unknown field (allowed: {', '.join(allowed)})")
    for key in mandatory:
        if key not in data:
            raise _fail(source, f"{at}.{key}" if at else key, "missing")


def _bool(value: Any, source: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(source, field, f"{value!r} is not true or false")
    return value


def _text(value: Any, source: str, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(source, field, f"{value!r} is not a string")
    return value


def _parse_column(data: Any, source: str, at: str) -> ContractColumn:
    if not isinstance(data, dict):
        raise _fail(source, at, f"{data!r} is not an object")
    _check_keys(data, COLUMN_KEYS, _MANDATORY_COLUMN_KEYS, source, at)
    name = _text(data["name"], source, f"{at}.name")
    if not _COLUMN_NAME.match(name):
        raise _fail(source, f"{at}.name", f"{name!r} is not a column name (lower case letters, digits, _)")
    type_name = _text(data["type"], source, f"{at}.type")
    if not is_glue_type(type_name):
        raise _fail(
            source,
            f"{at}.type",
            f"{type_name!r} is not a supported Glue type (one of {', '.join(PRIMITIVE_TYPES)}, decimal(p,s))",
        )
    description = _text(data.get("description", ""), source, f"{at}.description")
    if len(description) > GLUE_COMMENT_MAX:
        raise _fail(
            source, f"{at}.description", f"longer than a Glue comment ({GLUE_COMMENT_MAX} characters)"
        )
    return ContractColumn(
        name=name,
        type=type_name,
        required=_bool(data["required"], source, f"{at}.required"),
        nullable=_bool(data["nullable"], source, f"{at}.nullable"),
        description=description,
    )


def parse_contract(data: Any, source: str, dataset: str | None = None) -> Contract:
    """Validate ``data`` (a parsed contract) and build a :class:`Contract`; errors name ``source``.

    ``dataset``, when given, is the name the contract must declare (its file stem).
    """
    if not isinstance(data, dict):
        raise _fail(source, "(top level)", "a contract is a JSON object")
    _check_keys(data, CONTRACT_KEYS, _MANDATORY_CONTRACT_KEYS, source, "")
    name = _text(data["dataset"], source, "dataset")
    if not _DATASET_NAME.match(name):
        raise _fail(source, "dataset", f"{name!r} is not a dataset name (lower case letters, digits, _)")
    if dataset is not None and name != dataset:
        raise _fail(source, "dataset", f"{name!r} differs from the file name: name the file {name}.json")
    file_format = _text(data["format"], source, "format")
    if file_format not in FORMATS:
        raise _fail(source, "format", f"{file_format!r} is not one of {', '.join(FORMATS)}")
    columns_data = data["columns"]
    if not isinstance(columns_data, list) or not columns_data:
        raise _fail(source, "columns", "must be a non-empty list of columns")
    columns = tuple(_parse_column(item, source, f"columns[{i}]") for i, item in enumerate(columns_data))
    seen: set[str] = set()
    for i, column in enumerate(columns):
        if column.name in seen:
            raise _fail(source, f"columns[{i}].name", f"{column.name!r} is declared twice")
        seen.add(column.name)
    return Contract(
        dataset=name,
        format=file_format,
        columns=columns,
        allow_empty=_bool(data.get("allow_empty", False), source, "allow_empty"),
        description=_text(data.get("description", ""), source, "description"),
    )


def load_contract(path: Path | str) -> Contract:
    """Load and validate one contract file (its ``dataset`` must equal the file stem)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ContractError(f"{path}: cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ContractError(f"{path}: is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractError(
            f"{path}: not valid JSON: {error.msg} (line {error.lineno} column {error.colno})"
        ) from None
    return parse_contract(data, str(path), dataset=path.stem)


def load_contracts(directory: Path | str | None = None) -> dict[str, Contract]:
    """Every ``*.json`` contract in ``directory`` (default ``include/contracts``), keyed by dataset name."""
    directory = Path(directory) if directory is not None else DEFAULT_CONTRACTS_DIR
    if not directory.is_dir():
        raise ContractError(f"{directory}: not a directory of contract files")
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise ContractError(f"{directory}: no contract file (*.json)")
    return {contract.dataset: contract for contract in map(load_contract, paths)}


def _as_list(contracts: Mapping[str, Contract] | Iterable[Contract]) -> list[Contract]:
    items = list(contracts.values()) if isinstance(contracts, Mapping) else list(contracts)
    if not items:
        raise ValueError("no contract to pass: load_contracts() found none")
    names = [contract.dataset for contract in items]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"contract(s) given twice: {', '.join(duplicates)}")
    return sorted(items, key=lambda contract: contract.dataset)


def to_job_argument(contracts: Mapping[str, Contract] | Iterable[Contract]) -> str:
    """The Glue job's ``--contracts`` value: compact JSON ``{dataset: {format, allow_empty, columns}}``."""
    spec = {contract.dataset: contract.job_spec() for contract in _as_list(contracts)}
    return json.dumps(spec, separators=(",", ":"))


def from_job_argument(text: str) -> dict[str, Contract]:
    """Parse a ``--contracts`` value back into contracts (the inverse of :func:`to_job_argument`)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractError(f"--contracts: not valid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(data, dict) or not data:
        raise ContractError("--contracts: must be a non-empty JSON object {dataset: contract}")
    return {
        name: parse_contract(
            {"dataset": name, **spec} if isinstance(spec, dict) else spec, f"--contracts {name}"
        )
        for name, spec in data.items()
    }
