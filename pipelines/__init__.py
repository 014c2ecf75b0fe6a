"""skysmart: customers between SmartAcc and SkyBiz, through a Parquet lake into a warehouse.

Framework-free: nothing under ``pipelines`` imports Airflow (``tests/test_boundaries.py`` proves it).
"""

import os

__version__ = "0.1.0"

# Arrow's default pool (mimalloc) keeps what a run's many threads freed: at 200k customers a run's resident
# set peaked 180 MB higher with it than with the C library's allocator, at the same CPU. Read by pyarrow
# when it is first imported, and inherited by the processes a run starts; a value already set is kept.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
# skysmart does no linear algebra, but numpy's OpenBLAS starts a thread per core when numpy loads, and they
# spin for a while: 0.1 s of CPU in each process (a run and its validator), taken from the run on a 2-core
# machine. Read when numpy loads; a value already set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
