"""E-invoice readiness (LHDN MyInvois): the rules, read from the customer contract, and their pure checks.

``spec`` reads the rules from ``data_contracts/customer.yaml``; ``rules`` applies them column-wide to a
source's e-invoice fields. Normalization fills the model's e-invoice columns with them, the quality suite
turns each readiness rule into a warning expectation, and the warehouse view ``v_einvoice_readiness``
shows one row per business. See docs/einvoice.md.

Importing the package imports only ``spec`` (YAML and the contracts): the warehouse and the quality
suite read the rules without loading the normalization code.
"""

from pipelines.einvoice.spec import (
    COLUMNS,
    NO_SMARTACC_RECORD,
    NOT_ASSESSED,
    EinvoiceSpec,
    ReadinessRule,
    load_spec,
)

__all__ = ["COLUMNS", "NOT_ASSESSED", "NO_SMARTACC_RECORD", "EinvoiceSpec", "ReadinessRule", "load_spec"]
