"""E-invoice readiness (LHDN MyInvois): the rules, read from the customer contract, and their pure checks.

``spec`` reads the rules from ``data_contracts/customer.yaml``; ``rules`` applies them column-wide to a
source's e-invoice fields. Normalization fills the model's e-invoice columns with them, the quality suite
turns each readiness rule into a warning expectation, and the warehouse view ``v_einvoice_readiness``
shows one row per business. See docs/einvoice.md.
"""

from pipelines.einvoice.rules import Assessment, EinvoiceFields, assess, normalize_tin, split_reasons
from pipelines.einvoice.spec import COLUMNS, EinvoiceSpec, ReadinessRule, load_spec

__all__ = [
    "COLUMNS",
    "Assessment",
    "EinvoiceFields",
    "EinvoiceSpec",
    "ReadinessRule",
    "assess",
    "load_spec",
    "normalize_tin",
    "split_reasons",
]
