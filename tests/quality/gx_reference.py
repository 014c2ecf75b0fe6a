"""A plain great-expectations run of GX's own, as an oracle for what skysmart's batched validation stores."""

from __future__ import annotations

from typing import Any


def plain_definition(suite: Any, *, datasource: str, name: str) -> Any:
    """A ``ValidationDefinition`` over a whole pandas frame in a fresh ephemeral context, nothing of ours."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(), analytics_enabled=False
        ),
    )
    batch = (
        context.data_sources.add_pandas(datasource)
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=context.suites.add(suite))
    )
