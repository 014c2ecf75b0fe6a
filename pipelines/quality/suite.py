"""The great-expectations suite of a data contract, generated, never written by hand.

:func:`build_suite` turns every contract check (``notNull``, ``unique``, ``validValues``, ``pattern``,
``range``, ``length``) into one GX expectation carrying the check's severity, and adds the structural
expectations the contract implies: the columns in contract order and each column's pandas dtype.

great-expectations takes 3–4 s to import, so it is imported inside the functions that need it (:func:`_gx`),
without the modules it needs only for expectations no contract generates; importing this module stays light.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import threading
import types
import warnings
from functools import cache
from typing import TYPE_CHECKING, Any, Final, cast

import pandas as pd

from pipelines.contracts import Check, Contract, load_contract, pandas_dtypes
from pipelines.errors import ContractError

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

# Contract severities onto GX 1.x's ``FailureSeverity`` values; the contract's own word is kept in ``meta``.
_GX_SEVERITY: Final = {"error": "critical", "warning": "warning"}
#: Rules of the structural expectations (column order, dtypes): they read the frame's metadata, not rows.
STRUCTURAL_RULES: Final = ("columns", "dtype")
#: Modules GX imports at import time for expectations no contract generates (KL divergence, KS tests and
#: their charts): about a third of GX's import. :func:`_gx` imports them on first use instead.
DEFERRED_GX_IMPORTS: Final = ("altair", "scipy.stats")


# -- suite --------------------------------------------------------------------------------------------


def build_suite(contract: Contract | str) -> gx.ExpectationSuite:
    """Generate the GX suite of a contract: one expectation per check, plus the columns and their dtypes.

    Every expectation carries the contract severity twice: as GX's own ``severity`` (``critical`` for
    ``error``, ``warning``) and in ``meta`` with the check name and rule, which the report and
    :class:`QualityResult` read back. Structural expectations (column order, dtypes) are ``error``.

    Args:
        contract: a parsed contract or the name of one in ``data_contracts/``.

    Returns:
        An unsaved ``ExpectationSuite`` named ``<contract>@<version>``.

    Raises:
        ContractError: a check lacks the parameter its rule needs (e.g. ``pattern`` without ``pattern``).
    """
    ge = _gx()
    contract = load_contract(contract) if isinstance(contract, str) else contract
    dtype_expectation = _dtype_expectation_class()
    expectations: list[Any] = [
        ge.expectations.ExpectTableColumnsToMatchOrderedList(
            column_list=contract.column_names,
            severity=_GX_SEVERITY["error"],
            meta=_meta("table:columns", "columns", "error", None),
        )
    ]
    expectations += [
        dtype_expectation(
            column=column,
            dtype=str(pd.api.types.pandas_dtype(dtype)),
            severity=_GX_SEVERITY["error"],
            meta=_meta(f"{column}:dtype", "dtype", "error", None),
        )
        for column, dtype in pandas_dtypes(contract).items()
    ]
    expectations += [_expectation_for(ge, check) for check in contract.checks]
    expectations += _readiness_expectations(ge, contract)
    # Built whole: ``add_expectation`` on a suite needs an active data context, construction does not.
    suite = ge.ExpectationSuite(name=f"{contract.name}@{contract.version}", expectations=expectations)
    return cast("gx.ExpectationSuite", suite)


def _expectation_for(ge: Any, check: Check) -> Expectation:
    """The one GX expectation of a contract check."""
    e = ge.expectations
    common: dict[str, Any] = {
        "column": check.column,
        "severity": _GX_SEVERITY[check.severity],
        "meta": _meta(check.name, check.rule, check.severity, check.description),
    }
    params = check.params
    if check.rule == "notNull":
        return e.ExpectColumnValuesToNotBeNull(**common)  # type: ignore[no-any-return]
    if check.rule == "unique":
        return e.ExpectColumnValuesToBeUnique(**common)  # type: ignore[no-any-return]
    if check.rule == "validValues":
        values = _require(check, "validValues")
        if not isinstance(values, list) or not values:
            raise ContractError(
                f"check {check.name}: validValues must be a non-empty list", field=check.column
            )
        return e.ExpectColumnValuesToBeInSet(value_set=values, **common)  # type: ignore[no-any-return]
    if check.rule == "pattern":
        pattern = str(_require(check, "pattern"))
        try:
            re.compile(pattern)
        except re.error as exc:
            message = f"check {check.name}: pattern is not a regex: {exc}"
            raise ContractError(message, field=check.column) from None
        return e.ExpectColumnValuesToMatchRegex(regex=pattern, **common)  # type: ignore[no-any-return]
    if check.rule in ("range", "length"):
        low, high = params.get("min"), params.get("max")
        if low is None and high is None:
            raise ContractError(
                f"check {check.name}: {check.rule} needs min, max or both", field=check.column
            )
        if check.rule == "range":
            return e.ExpectColumnValuesToBeBetween(min_value=low, max_value=high, **common)  # type: ignore[no-any-return]
        return e.ExpectColumnValueLengthsToBeBetween(min_value=low, max_value=high, **common)  # type: ignore[no-any-return]
    raise ContractError(f"check {check.name}: no expectation for rule {check.rule!r}", field=check.column)


#: The ``rule`` in ``meta`` of the e-invoice readiness expectations (one per reason, warning).
READINESS_RULE: Final = "einvoice"


def _readiness_expectations(ge: Any, contract: Contract) -> list[Any]:
    """One warning expectation per e-invoice readiness rule of the contract (``einvoice_reasons:<reason>``).

    A row fails a rule when its ``einvoice_reasons`` list holds that rule's code, so each rule's failing
    customers are named in the report like any other check's. Contracts without the column get none.
    """
    if "einvoice_reasons" not in contract.column_names:
        return []
    from pipelines.einvoice.spec import load_spec

    return [
        ge.expectations.ExpectColumnValuesToNotMatchRegex(
            column="einvoice_reasons",
            regex=f"(^|;){re.escape(rule.reason)}(;|$)",
            severity=_GX_SEVERITY["warning"],
            meta=_meta(
                f"einvoice_reasons:{rule.reason}", READINESS_RULE, "warning", f"{rule.field}: {rule.rule}"
            ),
        )
        for rule in load_spec().rules
    ]


def _require(check: Check, param: str) -> Any:
    if param not in check.params:
        raise ContractError(f"check {check.name}: rule {check.rule} needs {param!r}", field=check.column)
    return check.params[param]


def _meta(check: str, rule: str, severity: str, description: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"check": check, "rule": rule, "severity": severity}
    if description:
        meta["description"] = description
    return meta


def _gx() -> Any:
    """Import great-expectations on first use, with its logging and one pandas warning quieted.

    GX logs ~200 INFO lines, and matches regexes with ``str.contains``, which warns about the contract's
    grouping parentheses on every pattern check. That warning is ignored where GX raises it, for the whole
    process: ``warnings.catch_warnings`` around each run would swap the process's filter list from
    several threads at once, which it is not safe for. :mod:`pipelines.quality.running` calls this on every
    run, as whoever owns the process may reset the filters (pytest does around each test); adding the same
    filter again only moves it to the front.
    """
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    if "great_expectations" not in sys.modules:
        for name in DEFERRED_GX_IMPORTS:
            if name not in sys.modules:
                sys.modules[name] = _DeferredModule(name)
    warnings.filterwarnings(
        "ignore",
        message="This pattern is interpreted as a regular expression",
        category=UserWarning,
        module="great_expectations",
    )
    import great_expectations

    return great_expectations


class _DeferredModule(types.ModuleType):
    """Stands in for a module until something reads from it, then imports it and answers from it.

    ``import altair`` finds this in ``sys.modules`` and binds it; the first attribute read (``alt.Chart``,
    ``stats.entropy``, a submodule import asking for ``__path__``) imports the real module, which then
    replaces this one in ``sys.modules``. Nothing changes for code that uses the module; it only costs later.
    """

    def __getattr__(self, attr: str) -> Any:
        return getattr(_import_deferred(self.__name__), attr)


_DEFERRED_LOCK: Final = threading.Lock()


def _import_deferred(name: str) -> types.ModuleType:
    with _DEFERRED_LOCK:
        module = sys.modules.get(name)
        if module is None or isinstance(module, _DeferredModule):
            sys.modules.pop(name, None)
            module = importlib.import_module(name)
        return module


@cache
def _dtype_expectation_class() -> Any:
    """``ExpectColumnDtypeToEqual``: the column's pandas dtype, compared by name.

    GX's own ``ExpectColumnValuesToBeOfType`` compares only ``dtype.type`` on pandas, and no type name it
    accepts resolves to ``Decimal`` or ``date`` (the scalar types of Arrow decimal and date columns), so it
    cannot express ``decimal128(18, 2)[pyarrow]`` or ``date32[day][pyarrow]`` at all, nor tell ``Int32``
    from numpy ``int32``. Comparing ``str(dtype)`` checks exactly what :func:`pandas_dtypes` generates.
    Defined on first use because subclassing needs GX imported; GX registers it by its snake-case name.
    """
    _gx()
    from great_expectations.expectations.expectation import BatchExpectation

    class ExpectColumnDtypeToEqual(BatchExpectation):
        """Expect a column's pandas dtype to be exactly ``dtype`` (e.g. ``str``, ``Int32``)."""

        column: str
        dtype: str

        metric_dependencies = ("table.column_types",)
        success_keys = ("column", "dtype")
        domain_keys = ("batch_id", "row_condition", "condition_parser")
        args_keys = ("column", "dtype")

        def _validate(
            self,
            metrics: dict[str, Any],
            runtime_configuration: dict[str, Any] | None = None,
            execution_engine: Any = None,
        ) -> dict[str, Any]:
            kwargs = self._get_success_kwargs()
            found = {str(t["name"]): str(t["type"]) for t in metrics["table.column_types"]}
            observed = found.get(kwargs["column"])
            return {"success": observed == kwargs["dtype"], "result": {"observed_value": observed}}

    return ExpectColumnDtypeToEqual
