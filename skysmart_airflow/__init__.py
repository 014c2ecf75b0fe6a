"""Airflow adapters for skysmart: connection types, hooks and operators over ``pipelines``."""
