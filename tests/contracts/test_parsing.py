"""A malformed contract is refused with a ContractError that names the field at fault."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from pipelines.contracts import load_contract, parse_contract
from pipelines.errors import ContractError

VALID: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "skysmart:probe",
    "name": "probe",
    "version": "1.0.0",
    "description": {"purpose": "A contract for parser tests."},
    "schema": [
        {
            "name": "probe",
            "physicalName": "probes",
            "properties": [
                {"name": "probe_id", "physicalType": "string", "required": True, "primaryKey": True},
                {
                    "name": "amount",
                    "physicalType": "decimal(12, 2)",
                    "quality": [{"rule": "range", "min": 0, "severity": "warning"}],
                },
                {"name": "status", "physicalType": "string"},
            ],
        }
    ],
}


# A change made in place to the probe's list of properties.
Change = Callable[[list[dict[str, Any]]], object]


def _doc(change: Change) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    change(doc["schema"][0]["properties"])
    return doc


def test_the_valid_probe_parses() -> None:
    contract = parse_contract(copy.deepcopy(VALID))
    assert contract.column_names == ["probe_id", "amount", "status"]
    assert contract.column("amount").decimal == (12, 2)
    checks = [(c.name, c.severity) for c in contract.checks]
    assert checks == [("probe_id:notNull", "error"), ("amount:range", "warning")]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param(
            lambda props: props[2].update(physicalType="varchar2"),
            "status",
            "unknown physicalType 'varchar2'",
            id="unknown-type",
        ),
        pytest.param(
            lambda props: props[2].update(physicalType="decimal(12)"),
            "status",
            "unknown physicalType 'decimal(12)'",
            id="decimal-without-scale",
        ),
        pytest.param(
            lambda props: props[2].update(quality=[{"rule": "matches", "pattern": "^a$"}]),
            "status",
            "unknown quality rule 'matches'",
            id="unknown-rule",
        ),
        pytest.param(
            lambda props: props[1]["quality"][0].update(severity="fatal"),
            "amount",
            "unknown severity 'fatal'",
            id="bad-severity",
        ),
        pytest.param(
            lambda props: props.append({"name": "amount", "physicalType": "int32"}),
            "amount",
            "defined twice",
            id="duplicate-column",
        ),
        pytest.param(
            lambda props: props[2].update(primaryKey=True),
            "status",
            "primary key column must be required",
            id="nullable-primary-key",
        ),
        pytest.param(
            lambda props: props[2].update(quality=["notNull"]),
            "status",
            "quality entry 'notNull' is not a mapping",
            id="quality-not-a-mapping",
        ),
        pytest.param(
            lambda props: props.append({"physicalType": "int32"}),
            "None",
            "without a name",
            id="unnamed-column",
        ),
    ],
)
def test_malformed_contract_raises_contract_error_naming_the_field(
    change: Change, field: str, message: str
) -> None:
    with pytest.raises(ContractError) as caught:
        parse_contract(_doc(change), origin="probe.yaml")
    assert caught.value.field == field
    assert message in str(caught.value)
    assert "probe.yaml" in str(caught.value)
    assert f"field={field}" in str(caught.value)


def test_a_document_that_is_not_a_contract_is_refused() -> None:
    with pytest.raises(ContractError, match="not an ODCS v3 DataContract"):
        parse_contract({"kind": "Mapping", "apiVersion": "skysmart/v1"}, origin="smartacc_to_skybiz.yaml")


def test_an_unknown_contract_name_is_refused() -> None:
    with pytest.raises(ContractError, match="no contract 'nope'"):
        load_contract("nope")
