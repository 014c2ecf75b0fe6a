"""Both emulators on loopback, in the background, from one seeded dataset.

``SandboxServer`` generates (or takes) a :class:`~skysmart_sandbox.data.SandboxData`, binds two sockets on
127.0.0.1 (free ports unless given), and serves the SkyBiz and the SmartAcc app with uvicorn, each in its own
thread and event loop, so a slow SkyBiz window never stalls SmartAcc paging. The states stay reachable while
serving (``server.skybiz.switches.inject("500")``, ``server.smartacc.received``), which is how tests switch
faults and inspect what a client sent.

Loopback latency: asyncio sets ``TCP_NODELAY`` on every accepted socket, so keep-alive answers are not held
back ~40 ms by Nagle's algorithm (the ``http.server`` trap in ``shared/STACK-NOTES.md``); ``bench/sandbox.py``
measures it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette

from skysmart_sandbox import skybiz as skybiz_module
from skysmart_sandbox import smartacc as smartacc_module
from skysmart_sandbox.data import SandboxData, generate
from skysmart_sandbox.faults import FaultMiddleware
from skysmart_sandbox.skybiz import SkyBizCredentials, SkyBizState
from skysmart_sandbox.smartacc import SmartAccCredentials, SmartAccState
from skysmart_sandbox.switches import Switches

HOST: Final = "127.0.0.1"
START_TIMEOUT_SECONDS: Final = 30.0

ENV_NAMES: Final = {
    "skybiz_url": "SKYSMART_SKYBIZ_URL",
    "skybiz_api_key": "SKYSMART_SKYBIZ_API_KEY",
    "skybiz_api_secret": "SKYSMART_SKYBIZ_API_SECRET",
    "smartacc_url": "SKYSMART_SMARTACC_URL",
    "smartacc_api_key": "SKYSMART_SMARTACC_API_KEY",
    "smartacc_username": "SKYSMART_SMARTACC_USERNAME",
    "smartacc_password": "SKYSMART_SMARTACC_PASSWORD",
}
"""Endpoint field → the ``SKYSMART_*`` variable :meth:`pipelines.config.Settings.from_env` reads."""


@dataclass(frozen=True, slots=True)
class SandboxEndpoints:
    """Where the running sandbox answers and the credentials it accepts (sandbox-only values).

    Attributes:
        skybiz_url: the SkyBiz modules URL, ``http://127.0.0.1:PORT/01/clientportal/apiv2/modules``.
        skybiz_api_key / skybiz_api_secret: a key pair with Customer — Read and Create.
        smartacc_url: the SmartAcc base URL, ``http://127.0.0.1:PORT``.
        smartacc_api_key: an API key with every customer-module permission.
        smartacc_username / smartacc_password: the login for ``/auth/credentials``.
    """

    skybiz_url: str
    skybiz_api_key: str
    skybiz_api_secret: str = field(repr=False)
    smartacc_url: str
    smartacc_api_key: str = field(repr=False)
    smartacc_username: str
    smartacc_password: str = field(repr=False)

    def to_json(self) -> str:
        """The endpoints file ``skysmart sandbox serve --write-endpoints`` writes (exactly these keys)."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SandboxEndpoints:
        """Inverse of :meth:`to_json`."""
        doc = json.loads(text)
        return cls(**{name: str(doc[name]) for name in ENV_NAMES})

    def as_env(self) -> dict[str, str]:
        """The ``SKYSMART_*`` variables that point the pipeline at this sandbox."""
        values = asdict(self)
        return {variable: values[name] for name, variable in ENV_NAMES.items()}


class _Served:
    """One app on one bound socket, served by uvicorn in a daemon thread."""

    def __init__(self, name: str, app: Any, port: int) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((HOST, port))
        except OSError:
            self.sock.close()
            raise
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"sandbox-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # surfaced by start()
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def wait_started(self, deadline: float) -> None:
        while not self.server.started:
            if self.error is not None or not self.thread.is_alive():
                raise RuntimeError(f"sandbox {self.name} server failed to start: {self.error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandbox {self.name} server did not start in time")
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.sock.close()


class SandboxServer:
    """Both emulators serving one dataset on 127.0.0.1, as a context manager.

    Example:
        >>> with SandboxServer(size=2_000, seed=7) as sandbox:  # doctest: +SKIP
        ...     settings = Settings.from_env(sandbox.endpoints.as_env())

    Args:
        size: customers per system, when ``data`` is not given.
        seed: generation seed.
        data: a dataset generated earlier (shared read-only between servers; states never mutate it).
        skybiz_port / smartacc_port: ports to bind; 0 picks free ones.
        skybiz_switches / smartacc_switches: run-time switches; well-behaved servers when omitted.
        skybiz_credentials / smartacc_credentials: accepted credentials; deterministic sandbox defaults.
        skybiz_mode: SkyBiz integration mode (``"2"`` developer, the sandbox default).
        generate_options: passed to :func:`~skysmart_sandbox.data.generate` (``overlap``, ``dirty_rate``).
    """

    def __init__(
        self,
        size: int = 2_000,
        seed: int = 42,
        *,
        data: SandboxData | None = None,
        skybiz_port: int = 0,
        smartacc_port: int = 0,
        skybiz_switches: Switches | None = None,
        smartacc_switches: Switches | None = None,
        skybiz_credentials: SkyBizCredentials | None = None,
        smartacc_credentials: SmartAccCredentials | None = None,
        skybiz_mode: str = "2",
        **generate_options: Any,
    ) -> None:
        self.size = size if data is None else data.skybiz.num_rows
        self.seed = seed
        self._data = data
        self._generate_options: dict[str, Any] = generate_options
        self._ports = (skybiz_port, smartacc_port)
        self._skybiz_switches = skybiz_switches
        self._smartacc_switches = smartacc_switches
        self._skybiz_credentials = skybiz_credentials or SkyBizCredentials()
        self._smartacc_credentials = smartacc_credentials or SmartAccCredentials()
        self._skybiz_mode = skybiz_mode
        self._served: list[_Served] = []
        self._skybiz: SkyBizState | None = None
        self._smartacc: SmartAccState | None = None
        self._endpoints: SandboxEndpoints | None = None
        self.generation_seconds = 0.0
        self.startup_seconds = 0.0

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Generate (if needed), bind and serve; returns once both servers accept connections."""
        if self._served:
            return self
        began = time.perf_counter()
        if self._data is None:
            self._data = generate(self.size, self.seed, **self._generate_options)
        self.generation_seconds = time.perf_counter() - began
        began = time.perf_counter()
        self._skybiz = SkyBizState(
            self._data, self._skybiz_switches, self._skybiz_credentials, mode=self._skybiz_mode
        )
        self._smartacc = SmartAccState(self._data, self._smartacc_switches, self._smartacc_credentials)
        try:
            self._served.append(_Served("skybiz", skybiz_module.create_app(self._skybiz), self._ports[0]))
            self._served.append(_Served("smartacc", _smartacc_app(self._smartacc), self._ports[1]))
            for served in self._served:
                served.start()
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            for served in self._served:
                served.wait_started(deadline)
        except BaseException:
            self.stop()
            raise
        sky, sma = self._served
        self._endpoints = SandboxEndpoints(
            skybiz_url=f"http://{HOST}:{sky.port}{self._skybiz.prefix}{skybiz_module.MODULES_PATH}",
            skybiz_api_key=self._skybiz_credentials.api_key,
            skybiz_api_secret=self._skybiz_credentials.api_secret,
            smartacc_url=f"http://{HOST}:{sma.port}",
            smartacc_api_key=self._smartacc_credentials.api_key,
            smartacc_username=self._smartacc_credentials.username,
            smartacc_password=self._smartacc_credentials.password,
        )
        self.startup_seconds = time.perf_counter() - began
        return self

    def stop(self) -> None:
        """Stop both servers and release their ports (idempotent)."""
        for served in self._served:
            served.server.should_exit = True  # both wind down at once
        for served in self._served:
            served.stop()
        self._served = []

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether both servers are serving."""
        return bool(self._served) and all(s.thread.is_alive() for s in self._served)

    # -- what tests and the CLI use ---------------------------------------------------------------------

    @property
    def data(self) -> SandboxData:
        """The dataset being served (as generated; creates and edits live in the states)."""
        if self._data is None:
            raise RuntimeError("the sandbox has not been started")
        return self._data

    @property
    def endpoints(self) -> SandboxEndpoints:
        """URLs and credentials of the running servers."""
        if self._endpoints is None:
            raise RuntimeError("the sandbox has not been started")
        return self._endpoints

    @property
    def skybiz(self) -> SkyBizState:
        """The live SkyBiz state: switches, keys, mode, customers, ``received``, ``audit``."""
        if self._skybiz is None:
            raise RuntimeError("the sandbox has not been started")
        return self._skybiz

    @property
    def skybiz_credentials(self) -> SkyBizCredentials:
        """Every SkyBiz key pair the sandbox accepts (read+create, read-only, create-only, no permission)."""
        return self._skybiz_credentials

    @property
    def smartacc(self) -> SmartAccState:
        """The live SmartAcc state: switches, credentials, customers, ``received``."""
        if self._smartacc is None:
            raise RuntimeError("the sandbox has not been started")
        return self._smartacc


def _smartacc_app(state: SmartAccState) -> Any:
    """The SmartAcc app with the fault middleware in front (unless its module already put it there)."""
    app: Starlette = smartacc_module.create_app(state)
    if any(getattr(m, "cls", None) is FaultMiddleware for m in app.user_middleware):
        return app
    return FaultMiddleware(app, switches=state.switches, render_error=_smartacc_render_error)


def _smartacc_render_error(status: int, message: str) -> tuple[bytes, str]:
    body, content_type = smartacc_module.render_error(status, message)
    return body, content_type
