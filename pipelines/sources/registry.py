"""The source registry: which sources exist, found once, asked everywhere.

Three ways in, in this order:

1. **Built in**: every subpackage of :mod:`pipelines.sources` that exports ``SPEC`` (``skybiz``,
   ``smartacc``).
2. **Installed**: an entry point in the group ``skysmart.sources`` naming a :class:`SourceSpec`
   (``crm = "skysmart_crm:SPEC"`` under ``[project.entry-points."skysmart.sources"]``).
3. **At run time**: :func:`register_source` (tests, notebooks, a plugin that builds its spec).

Only the specs are imported here — they are plain data — so importing the registry stays cheap (the DAG
files do). Every consumer asks the registry *when it runs* (:func:`get`, :func:`names`), so a source
registered later is known everywhere from then on.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Final

from pipelines.errors import ConfigError
from pipelines.sources.spec import SourceSpec

ENTRY_POINT_GROUP: Final = "skysmart.sources"

_lock = threading.RLock()
_specs: dict[str, SourceSpec] | None = None


def _discover() -> dict[str, SourceSpec]:
    """Built-in vendor packages, then installed entry points; a name given twice is a ConfigError."""
    import pipelines.sources as package

    found: dict[str, SourceSpec] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, SourceSpec):
            _add(found, spec, origin=module.__name__)
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        spec = point.load()
        if not isinstance(spec, SourceSpec):
            raise ConfigError(
                f"entry point {point.name!r} of {ENTRY_POINT_GROUP} is not a SourceSpec", field=point.value
            )
        _add(found, spec, origin=point.value)
    return found


def _add(found: dict[str, SourceSpec], spec: SourceSpec, *, origin: str) -> None:
    if spec.name in found and found[spec.name] != spec:
        raise ConfigError(f"source {spec.name!r} is defined twice (again by {origin})", field="name")
    found[spec.name] = spec


def _all() -> dict[str, SourceSpec]:
    global _specs
    if _specs is None:
        with _lock:
            if _specs is None:
                _specs = _discover()
    return _specs


def register_source(spec: SourceSpec) -> SourceSpec:
    """Add a source at run time (registering the same spec again is a no-op); returns the spec.

    Raises:
        ConfigError: another source already has this name.
    """
    with _lock:
        specs = dict(_all())
        _add(specs, spec, origin="register_source")
        global _specs
        _specs = specs
    return spec


def unregister_source(name: str) -> None:
    """Forget a source registered at run time (tests clean up with it); built-ins come back on rediscovery."""
    with _lock:
        global _specs
        _specs = {k: v for k, v in _all().items() if k != name}


def get(name: str) -> SourceSpec:
    """The spec of a source, or a :class:`ConfigError` listing the known ones."""
    spec = _all().get(name)
    if spec is None:
        raise ConfigError(f"unknown source {name!r}; expected one of {', '.join(names())}", field="source")
    return spec


def find(name: str) -> SourceSpec | None:
    """The spec of a source, or ``None``."""
    return _all().get(name)


def names() -> tuple[str, ...]:
    """Every registered source, built-ins first."""
    return tuple(_all())


def default_names() -> tuple[str, ...]:
    """The sources ``--source all`` and the DAGs run by default."""
    return tuple(name for name, spec in _all().items() if spec.default)


def specs() -> Iterator[SourceSpec]:
    """Every registered spec, in :func:`names` order."""
    yield from tuple(_all().values())
