"""skysmart: customers between SmartAcc and SkyBiz, through a Parquet lake into a warehouse.

Framework-free: nothing under ``pipelines`` imports Airflow (``tests/test_boundaries.py`` proves it).
"""

__version__ = "0.1.0"
