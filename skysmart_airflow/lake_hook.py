"""The lake's object-store credentials from an Airflow connection, for tasks on any worker.

The connection (default ``skysmart_lake_default``) may be of type ``skysmart_lake`` or Airflow's own
``aws``: login = access key id, password = secret access key, extras ``endpoint_url`` (MinIO, Ceph, R2, moto;
or a full URL in ``host``), ``region_name`` and ``aws_session_token``. The lake URL itself stays where the
steps read it (the operator's ``lake_url``, the ``skysmart_lake`` Variable, ``SKYSMART_LAKE``).

A local lake needs no connection. An object-store lake without the default connection uses the worker's own
AWS environment (variables, instance profile), as the CLI does; a connection named explicitly must exist.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from pipelines.errors import ConfigError, SkysmartError, register_secret

# pipelines.lake (pyarrow, fsspec) is imported where it is used: provider discovery imports this module
# for connection_type_info() and must stay light.


class LakeHook(BaseHook):
    """Object-store access for the lake: key pair, endpoint and region from one connection."""

    conn_name_attr = "lake_conn_id"
    default_conn_name = "skysmart_lake_default"
    conn_type = "skysmart_lake"
    hook_name = "skysmart lake (S3-compatible object storage)"

    def __init__(self, lake_conn_id: str | None = default_conn_name) -> None:
        super().__init__()
        self.lake_conn_id = lake_conn_id

    def get_storage_options(self) -> dict[str, Any]:
        """s3fs keywords from the connection; the credentials are registered as secrets first."""
        if not self.lake_conn_id:
            return {}
        conn = self.get_connection(self.lake_conn_id)
        extra = conn.extra_dejson or {}
        key = conn.login or extra.get("aws_access_key_id")
        secret = conn.password or extra.get("aws_secret_access_key")
        token = extra.get("aws_session_token")
        for value in (key, secret, token):
            if value:
                register_secret(str(value))
        if bool(key) != bool(secret):
            raise ConfigError(
                f"connection {self.lake_conn_id!r} needs both the access key id (login) and the secret "
                "access key (password), or neither to use the worker's own AWS credentials",
                field="login/password",
            )
        options: dict[str, Any] = {}
        if key:
            options.update(key=str(key), secret=str(secret))
        if token:
            options["token"] = str(token)
        endpoint = extra.get("endpoint_url") or _endpoint_from_host(conn)
        if endpoint:
            options["endpoint_url"] = str(endpoint).rstrip("/")
        if extra.get("region_name"):
            options["client_kwargs"] = {"region_name": str(extra["region_name"])}
        return options

    def configure(self, lake_url: str) -> None:
        """Point this task process's object-store access at the connection; nothing for a local lake."""
        from pipelines.lake import configure_object_store, is_object_store

        if not is_object_store(lake_url):
            return
        try:
            options = self.get_storage_options()
        except AirflowNotFoundException:
            if self.lake_conn_id != self.default_conn_name:
                raise ConfigError(
                    f"lake connection {self.lake_conn_id!r} is not defined", field="lake_conn_id"
                ) from None
            options = {}  # no default connection: the worker's AWS environment, like the CLI
        configure_object_store(options or None)

    def get_conn(self) -> Any:
        """The lake of the ``url`` extra (else the ``skysmart_lake`` Variable), opened with these options."""
        from pipelines.lake import Lake
        from skysmart_airflow.operators import lake_url_from_environment

        conn = self.get_connection(str(self.lake_conn_id))
        url = str((conn.extra_dejson or {}).get("url") or lake_url_from_environment())
        self.configure(url)
        return Lake(url)

    def test_connection(self) -> tuple[bool, str]:
        """List the lake's committed raw windows of one source: reading needs the key pair and endpoint."""
        try:
            lake = self.get_conn()
            lake.windows("raw", "skybiz")
        except SkysmartError as error:
            return False, f"{type(error).__name__}: {error}"
        return True, f"lake {lake.url} reachable"


def _endpoint_from_host(conn: Any) -> str | None:
    host = (conn.host or "").strip()
    if not host:
        return None
    if "://" in host:
        return host
    scheme = conn.schema if conn.schema in ("http", "https") else "https"
    return f"{scheme}://{host}{f':{conn.port}' if conn.port else ''}"


def connection_type_info() -> dict[str, Any]:
    """The ``connection-types`` entry for ``get_provider_info`` (provider.py appends it)."""
    return {
        "connection-type": LakeHook.conn_type,
        "hook-class-name": "skysmart_airflow.lake_hook.LakeHook",
        "hook-name": LakeHook.hook_name,
        "conn-fields": {
            "endpoint_url": {
                "label": "Endpoint URL",
                "description": "S3-compatible endpoint (MinIO, Ceph, R2); empty for AWS S3.",
                "schema": {"type": ["string", "null"]},
            },
            "region_name": {
                "label": "Region",
                "description": "The bucket's region, e.g. ap-southeast-1; empty: the SDK's default.",
                "schema": {"type": ["string", "null"]},
            },
            "aws_session_token": {
                "label": "Session token",
                "description": "For temporary credentials only.",
                "schema": {"type": ["string", "null"], "format": "password"},
            },
            "url": {
                "label": "Lake URL",
                "description": "s3://bucket/prefix, used by the connection test (tasks use the Variable).",
                "schema": {"type": ["string", "null"]},
            },
        },
        "ui-field-behaviour": {
            "hidden-fields": ["host", "port", "schema", "extra"],
            "relabeling": {"login": "Access key ID", "password": "Secret access key"},
            "placeholders": {"login": "AKIA...", "endpoint_url": "https://minio.example.com:9000"},
        },
    }
