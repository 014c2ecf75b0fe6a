"""SkyBiz as a :class:`~pipelines.sources.WindowSource`: a whole window in one response, no lookups."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from pipelines.sources import Lookup, Page, client_facts
from pipelines.sources.skybiz.client import SkyBizClient
from pipelines.windows import Window


class SkyBizWindows:
    """SkyBiz answers a whole window in one response (shared/api/SKYBIZ.md §4): one page, no lookups."""

    source: Final = "skybiz"

    def __init__(self, client: SkyBizClient) -> None:
        self.client = client

    def iter_pages(self, window: Window) -> Iterator[Page]:
        """The window's single page."""
        yield self.client.read_window(window)

    def lookups(self, window: Window) -> Sequence[Lookup]:
        """None: SkyBiz rows carry their term in days already."""
        return ()

    def manifest_extra(self) -> dict[str, Any]:
        """Client and host."""
        return client_facts(self.client, self.client.settings.url)
