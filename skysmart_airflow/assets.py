"""Assets skysmart's DAGs produce, so downstream DAGs can be data-aware."""

from __future__ import annotations

from airflow.sdk import Asset

CUSTOMERS_WAREHOUSE = Asset(name="skysmart_customers", uri="skysmart://warehouse/customers")
"""Updated whenever a window of customers has been loaded into the warehouse."""
