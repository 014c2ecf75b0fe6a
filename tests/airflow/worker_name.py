"""``[core] hostname_callable`` for workers that stand for separate machines on one test host.

Airflow records the name this returns as ``task_instance.hostname``; on real machines it is the FQDN. The
multi-worker test starts each Celery worker with ``SKYSMART_WORKER_NAME`` set, so the metadata database says
which worker ran each task instance.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The worker's name from ``SKYSMART_WORKER_NAME``, else the host's FQDN (Airflow's default)."""
    return os.environ.get("SKYSMART_WORKER_NAME") or socket.getfqdn()
