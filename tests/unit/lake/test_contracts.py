"""Schema contracts of the raw datasets: the files in include/contracts and their loader."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from sagelake.lake import catalog
from sagelake.lake.contracts import (
    DEFAULT_CONTRACTS_DIR,
    Contract,
    ContractColumn,
    ContractError,
    from_job_argument,
    is_glue_type,
    load_contract,
    load_contracts,
    to_job_argument,
)
from sagelake.lake.layout import Lake
from tests.support.constants import ROOT

VALID = {
    "dataset": "raw_things",
    "description": "Things.",
    "format": "csv",
    "allow_empty": True,
    "columns": [
        {"name": "thing_id", "type": "string", "required": True, "nullable": False, "description": "Key."},
        {"name": "weight", "type": "decimal(10,2)", "required": False, "nullable": True},
    ],
}


def write(directory: Path, name: str, data: object) -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


RAW_CUSTOMERS = [
    ("customer_id", "string"),
    ("signup_date", "date"),
    ("plan", "string"),
    ("monthly_fee", "double"),
    ("age", "double"),
    ("region", "string"),
    ("support_tickets", "int"),
    ("churned", "int"),
]
RAW_EVENTS = [
    ("event_id", "string"),
    ("customer_id", "string"),
    ("ts", "string"),
    ("event_type", "string"),
    ("amount", "double"),
    ("duration_s", "double"),
]


def test_the_project_contracts_declare_todays_raw_schemas() -> None:
    contracts = load_contracts()
    assert DEFAULT_CONTRACTS_DIR == ROOT / "include" / "contracts"
    assert sorted(contracts) == ["raw_customers", "raw_events"]
    customers, events = contracts["raw_customers"], contracts["raw_events"]
    assert customers.format == "csv" and events.format == "jsonl"
    assert customers.column_types() == RAW_CUSTOMERS
    assert events.column_types() == RAW_EVENTS
    assert not customers.allow_empty and not events.allow_empty
    assert all(column.required for contract in contracts.values() for column in contract.columns)
    nullable = {c.name for contract in contracts.values() for c in contract.columns if c.nullable}
    assert nullable == {"age", "monthly_fee"}  # imputed; every other null is quarantined


def test_load_contract_builds_dataclasses_with_defaults(tmp_path: Path) -> None:
    data = copy.deepcopy(VALID)
    del data["allow_empty"], data["description"]
    contract = load_contract(write(tmp_path, "raw_things.json", data))
    assert contract == Contract(
        dataset="raw_things",
        format="csv",
        columns=(
            ContractColumn("thing_id", "string", required=True, nullable=False, description="Key."),
            ContractColumn("weight", "decimal(10,2)", required=False, nullable=True),
        ),
        allow_empty=False,
    )
    assert contract.column_names == ["thing_id", "weight"]
    assert contract.column("weight").type == "decimal(10,2)"
    with pytest.raises(KeyError, match="no column 'nope'"):
        contract.column("nope")


def test_glue_columns_are_a_glue_columns_list() -> None:
    contract = load_contracts()["raw_customers"]
    columns = contract.glue_columns()
    assert [(c["Name"], c["Type"]) for c in columns] == RAW_CUSTOMERS
    assert all(set(c) == {"Name", "Type", "Comment"} and 0 < len(c["Comment"]) <= 255 for c in columns)
    bare = ContractColumn("x", "int", required=True, nullable=True)
    assert bare.glue_column() == {"Name": "x", "Type": "int"}


def test_job_argument_is_compact_json_and_round_trips() -> None:
    contracts = load_contracts()
    argument = to_job_argument(contracts)
    assert " " not in argument and "\n" not in argument
    assert len(argument) < 2000  # a Glue job argument, visible in the console
    data = json.loads(argument)
    assert list(data) == ["raw_customers", "raw_events"]
    assert data["raw_events"]["format"] == "jsonl" and data["raw_events"]["allow_empty"] is False
    assert data["raw_customers"]["columns"][4] == {
        "name": "age",
        "type": "double",
        "required": True,
        "nullable": True,
    }
    back = from_job_argument(argument)
    for name, contract in contracts.items():
        # Descriptions stay out of the argument; everything the job uses survives.
        assert back[name].job_spec() == contract.job_spec()
    assert to_job_argument(list(contracts.values())) == argument  # a mapping or any iterable


def test_job_argument_rejects_nothing_or_duplicates() -> None:
    contract = load_contracts()["raw_events"]
    with pytest.raises(ValueError, match="no contract"):
        to_job_argument({})
    with pytest.raises(ValueError, match="given twice: raw_events"):
        to_job_argument([contract, contract])
    with pytest.raises(ContractError, match="--contracts: not valid JSON"):
        from_job_argument("{nope")
    with pytest.raises(ContractError, match=r"--contracts raw_x: format: 'xml'"):
        from_job_argument('{"raw_x": {"format": "xml", "columns": []}}')


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("string", True),
        ("int", True),
        ("bigint", True),
        ("date", True),
        ("timestamp", True),
        ("decimal(10,2)", True),
        ("decimal(38,38)", True),
        ("decimal(39,2)", False),
        ("decimal(2,3)", False),
        ("decimal(10, 2)", False),
        ("integer", False),
        ("STRING", False),
        ("array<string>", False),
    ],
)
def test_glue_types(name: str, valid: bool) -> None:
    assert is_glue_type(name) is valid


def broken(change) -> dict:
    data = copy.deepcopy(VALID)
    change(data)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "{not json",
            r"not valid JSON: Expecting property name enclosed in double quotes \(line 1 column 2\)",
        ),
        ([], r"\(top level\): a contract is a JSON object"),
        (broken(lambda d: d.pop("format")), r": format: missing"),
        (broken(lambda d: d.update(formt="csv")), r": formt: unknown field \(allowed: dataset, "),
        (broken(lambda d: d.update(format="parquet")), r": format: 'parquet' is not one of csv, jsonl"),
        (
            broken(lambda d: d.update(dataset="raw_other")),
            r": dataset: 'raw_other' differs from the file name",
        ),
        (broken(lambda d: d.update(dataset="Raw-Things")), r": dataset: 'Raw-Things' is not a dataset name"),
        (broken(lambda d: d.update(allow_empty="no")), r": allow_empty: 'no' is not true or false"),
        (broken(lambda d: d.update(columns=[])), r": columns: must be a non-empty list"),
        (broken(lambda d: d["columns"].append("x")), r": columns\[2\]: 'x' is not an object"),
        (broken(lambda d: d["columns"][1].pop("nullable")), r": columns\[1\].nullable: missing"),
        (broken(lambda d: d["columns"][1].update(nullabel=True)), r": columns\[1\].nullabel: unknown field"),
        (
            broken(lambda d: d["columns"][0].update(required=1)),
            r": columns\[0\].required: 1 is not true or false",
        ),
        (broken(lambda d: d["columns"][1].update(type="dubble")), r": columns\[1\].type: 'dubble' is not a"),
        (
            broken(lambda d: d["columns"][1].update(name="Weight")),
            r": columns\[1\].name: 'Weight' is not a col",
        ),
        (broken(lambda d: d["columns"][1].update(name="_c0")), r": columns\[1\].name: '_c0' is not a column"),
        (
            broken(lambda d: d["columns"][1].update(name="thing_id")),
            r": columns\[1\].name: 'thing_id' is decl",
        ),
        (broken(lambda d: d["columns"][0].update(description="x" * 256)), r"longer than a Glue comment"),
    ],
)
def test_invalid_contracts_fail_with_one_line_naming_file_and_field(tmp_path: Path, data, message) -> None:
    path = write(tmp_path, "raw_things.json", data)
    with pytest.raises(ContractError) as error:
        load_contract(path)
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert re.search(message, text), text


def test_load_contracts_reads_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="not a directory"):
        load_contracts(tmp_path / "missing")
    with pytest.raises(ContractError, match=r"no contract file \(\*\.json\)"):
        load_contracts(tmp_path)
    write(tmp_path, "raw_things.json", VALID)
    write(tmp_path, "README.md", "not a contract")
    other = dict(VALID, dataset="raw_more", format="jsonl")
    write(tmp_path, "raw_more.json", other)
    contracts = load_contracts(str(tmp_path))
    assert list(contracts) == ["raw_more", "raw_things"]
    assert contracts["raw_things"].allow_empty is True
    write(tmp_path, "raw_bad.json", broken(lambda d: d.update(dataset="raw_bad", format="xml")))
    with pytest.raises(ContractError, match=r"raw_bad\.json: format: 'xml'"):
        load_contracts(tmp_path)


def test_the_catalog_takes_the_raw_tables_columns_from_the_contracts() -> None:
    tables = catalog.table_inputs(Lake("b"))
    for name, contract in load_contracts().items():
        assert tables[name]["StorageDescriptor"]["Columns"] == contract.glue_columns()
    changed = {name: replace(c, columns=c.columns[:2]) for name, c in load_contracts().items()}
    assert len(catalog.table_inputs(Lake("b"), changed)["raw_events"]["StorageDescriptor"]["Columns"]) == 2
