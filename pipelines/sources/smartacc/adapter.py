"""SmartAcc as a :class:`~pipelines.sources.WindowSource`: concurrent pages of 20 plus the Terms lookup."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from pipelines.sources import Lookup, Page, client_facts
from pipelines.sources.smartacc import SPEC
from pipelines.sources.smartacc.client import SmartAccClient
from pipelines.windows import Window

TERMS: Final = SPEC.lookup("terms")


class SmartAccWindows:
    """SmartAcc pages of 20, read concurrently and de-duplicated inside the client; plus the Terms lookup."""

    source: Final = "smartacc"

    def __init__(self, client: SmartAccClient) -> None:
        self.client = client

    def iter_pages(self, window: Window) -> Iterator[Page]:
        """The client's pages: every customer of the window once, newest version, stable order."""
        yield from self.client.iter_window(window)

    def lookups(self, window: Window) -> Sequence[Lookup]:
        """The Terms lookup, which normalization needs to turn ``AcTermID`` into days (SMARTACC.md §5)."""
        return (Lookup(TERMS.entity, TERMS.contract, self.client.terms()),)

    def manifest_extra(self) -> dict[str, Any]:
        """Client and host, and how the window was read: passes, fallback, requests, duplicates dropped."""
        facts = client_facts(self.client, self.client.settings.url)
        stats = self.client.last_window_stats
        if stats is not None:
            facts.update(
                passes=stats.passes,
                keyset_fallback=stats.fallback,
                requests=stats.requests,
                rows_received=stats.rows_received,
                duplicates_dropped=stats.duplicates_dropped,
            )
        return facts


def test_connection(client: SmartAccClient) -> tuple[bool, str]:
    """The connection form's "Test": fetch the Terms lookup, which needs authentication and a permission."""
    from pipelines.errors import SkysmartError

    try:
        terms = client.terms()
    except SkysmartError as error:
        return False, f"{type(error).__name__}: {error}"
    return True, f"SmartAcc authenticated; {len(terms.rows)} payment terms visible"
