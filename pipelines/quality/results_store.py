"""The validation results store of the validator's ephemeral GX contexts: it keeps results as they are.

``ValidationDefinition.run`` hands its results back *and* stores them in its context's validation results
store, whose ``serialize`` turns them into indented, key-sorted JSON first (marshmallow over GX's converter)
— 0.08-0.24 s of a 20,000-customer batch's run, for a store nobody reads: each context lives for one
batch and is dropped with it. This store's backend is GX's in-memory one, as before; only the text is not
made. GX builds it from its name in the context's config (:func:`store_config`), as it builds its own stores,
so this module (and GX with it) is imported only where a context is made.
"""

from __future__ import annotations

from typing import Any, Final

from great_expectations.data_context.store.validation_results_store import ValidationResultsStore

STORE_NAME: Final = "skysmart_validation_results"


def store_config() -> dict[str, Any]:
    """The store's entry in a context's ``stores``: a new one per context, as GX may add keys to it."""
    return {
        "class_name": KeptAsIsValidationResultsStore.__name__,
        "module_name": __name__,
        "store_backend": {"class_name": "InMemoryStoreBackend"},
    }


class KeptAsIsValidationResultsStore(ValidationResultsStore):
    """GX's validation results store, holding each result object rather than its JSON text."""

    def serialize(self, value: Any) -> Any:
        """The result itself: the context and its in-memory backend are dropped with the batch."""
        return value

    def deserialize(self, value: Any) -> Any:
        """What :meth:`serialize` kept."""
        return value
