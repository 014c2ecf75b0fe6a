"""SmartAcc DynaMod Web API (ServiceStack): customers by page, by edit date, by id, and the lookups.

Everything here follows shared/api/SMARTACC.md. Its quirks, in one place:

* Auth (§2): ``Authorization: Bearer <apikey>`` on every call; or ``POST /auth/credentials`` once and the
  ``ss-id``/``ss-pid`` session cookies afterwards, logging in again once when a call answers 401.
* ``?format=json`` and ``Accept: application/json`` on every call (§1). SmartAcc issues no request ids, so
  every request carries our own ``X-Request-Id: sa-<uuid4 hex>`` and that is the id we record.
* Errors are ``ResponseStatus {ErrorCode, Message}`` with a mapped HTTP status (§7): 401 and 404 ``ApiKey
  does not exist`` → :class:`AuthenticationError`, 403 → :class:`PermissionDeniedError`, other 4xx →
  :class:`RequestRejectedError`, 429/5xx → transient (retried by :mod:`pipelines.http`).
* Dates are ``/Date(ms-0000)/`` (§6); see :func:`parse_servicestack_date`.
* Customer pages hold 20 rows and carry no totals: paging ends at the first short page (§3, §9).
* ``/Customers/EditDate/{EditDate}`` returns customers with ``EditDate >= value`` ordered by (EditDate,
  AcCustomerID), paged with ``?Page=`` — offset paging over live data (§9), which :meth:`iter_window`
  designs around.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from pipelines.errors import (
    ApiError,
    AuthenticationError,
    SkysmartError,
    TransientApiError,
    WindowError,
    redact,
    register_secret,
)
from pipelines.http import CallContext, HttpClient, JsonResponse, retry_after_seconds, status_error
from pipelines.sources import Page, Row, int_or_none, record_row, text_row
from pipelines.sources.smartacc import SPEC
from pipelines.sources.smartacc.dates import parse_servicestack_date, parse_servicestack_dates
from pipelines.sources.smartacc.settings import SmartAccSettings
from pipelines.windows import MYT, Window

SOURCE: Final = SPEC.name
PAGE_SIZE: Final = 20  # "Each page consists of 20 records" (SMARTACC.md §3)
GROUPS_PER_PAGE: Final = 100
_SESSION_COOKIES: Final = frozenset({"ss-id", "ss-pid"})
_PATH_UNSAFE: Final = re.compile(r"[/\\%?#]|^\.{1,2}$")
# A run of >= 20 rows sharing one EditDate millisecond is read with offset pages under one cursor; such a
# group is read again until two reads agree (see _read_at). Only bulk edits produce one.
_GROUP_READS: Final = 5


# -- results --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowStats:
    """How :meth:`SmartAccClient.iter_window` read its last window (goes into the lake manifest).

    Attributes:
        window: the window key.
        passes: concurrent offset-paging passes made.
        fallback: whether the sequential keyset read had to be used.
        requests: logical requests sent (retries not counted).
        rows_received: in-window rows received across passes and scans.
        duplicates_dropped: received rows that were older or repeated versions of a kept customer.
        rows: customers yielded.
        seconds: wall time.
    """

    window: str
    passes: int
    fallback: bool
    requests: int
    rows_received: int
    duplicates_dropped: int
    rows: int
    seconds: float


_NEVER: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Rec:
    """One customer row as received, with only what paging, ordering and de-duplication need.

    Attributes:
        row: the row exactly as sent (vendor text); never interpreted beyond ``AcCustomerID``, ``EditDate``
            and ``Stamp``.
        key: ``AcCustomerID``, or the row's own JSON when it has none (such a row is still kept: the
            normalizer quarantines it as ``id_missing``).
        edited: the row's EditDate; ``None`` when it cannot be read (kept too: ``modified_at_unparseable``).
        at: where the row sits in the EditDate order: ``edited``, or for an unreadable EditDate the last
            readable EditDate before it in the listing (the route is ordered by EditDate on the server,
            so an unreadable row lies between its readable neighbours).
        stamp: ``Stamp`` (-1 when absent or unreadable).
        request_id: lineage of the request that returned the row.
        page: the vendor page it came on.
        seq: its position in the listing it came from (a stable order among unreadable rows).
    """

    row: Row
    key: str
    edited: datetime | None
    at: datetime
    stamp: int
    request_id: str
    page: int
    seq: int

    @property
    def version(self) -> tuple[datetime, int]:
        return (self.edited or _NEVER, self.stamp)

    @property
    def order(self) -> tuple[datetime, int, str, int]:
        """Sort key: the server's (EditDate, AcCustomerID), unreadable rows after their readable neighbour."""
        if self.edited is None:
            return (self.at, 1, "", self.seq)
        return (self.edited, 0, self.key, 0)


@dataclass(frozen=True, slots=True)
class _Fetched:
    """One EditDate-route page as received, with the server's clock; its rows are interpreted by the caller.

    Nothing here reads a row's content, so a hostile record can fail nothing at fetch time.
    """

    page: Page
    served_at: datetime | None

    def recs(self, after: datetime, seq: int = 0, end: datetime | None = None) -> tuple[list[_Rec], bool]:
        """The page's rows in order, each placed after the last readable EditDate before it.

        Args:
            after: the last readable EditDate before this page (the listing's cursor for page 1).
            seq: the position of the page's first row in its listing.
            end: stop at the first row whose EditDate is ``>= end``; it and the rows after it are not
                interpreted at all.

        Returns:
            The rows read, and whether a row at or past ``end`` stopped the reading.
        """
        out: list[_Rec] = []
        for i, row in enumerate(self.page.rows):
            rec = _rec(row, self.page.request_id, self.page.page, after, seq + i)
            if end is not None and rec.edited is not None and rec.edited >= end:
                return out, True
            after = rec.at
            out.append(rec)
        return out, False


@dataclass
class _Counter:
    requests: int = 0
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, requests: int = 0, received: int = 0) -> None:
        with self.lock:
            self.requests += requests
            self.received += received


# -- the client -----------------------------------------------------------------------------------------


class SmartAccClient:
    """Reads customers and their lookups from one SmartAcc installation.

    Thread-safe: one client (one connection pool, one rate limit, one login session) serves many threads.

    Args:
        settings: base URL, API key or user name and password, HTTP limits.
        http: an :class:`HttpClient` to share; by default the client makes its own.
        max_passes: concurrent offset-paging passes :meth:`iter_window` tries before it falls back to the
            sequential keyset read.
        clock_margin: used only when the server sends no ``Date`` header: how far the server's clock may
            lag ours.
    """

    source: Final = SOURCE

    def __init__(
        self,
        settings: SmartAccSettings,
        *,
        http: HttpClient | None = None,
        max_passes: int = 2,
        clock_margin: timedelta = timedelta(seconds=2),
    ) -> None:
        if max_passes < 0:
            raise ValueError("max_passes must be >= 0")
        self.settings = settings
        self.base_url = settings.url.rstrip("/")
        self.http = http or HttpClient(SOURCE, settings.http)
        self.max_passes = max_passes
        self.clock_margin = clock_margin
        self.last_window_stats: WindowStats | None = None
        self._auth_lock = threading.Lock()
        self._auth_generation = 0
        self._logged_in = False
        self._pages: ThreadPoolExecutor | None = None  # see _page_pool
        self._pages_lock = threading.Lock()

    def __repr__(self) -> str:
        how = "api_key" if self.settings.api_key else "credentials"
        return f"SmartAccClient(url={self.base_url!r}, auth={how})"

    def __enter__(self) -> SmartAccClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the page threads and close pooled connections."""
        with self._pages_lock:
            pages, self._pages = self._pages, None
        if pages is not None:
            pages.shutdown(wait=True, cancel_futures=True)
        self.http.close()

    def _page_pool(self) -> ThreadPoolExecutor:
        """The threads that fetch pages for every window this client reads, started once.

        As wide as the vendor's concurrency bound, which the client's requests share anyway. A pool per
        window pass started and joined up to eight threads per window: at 20,000 customers, the SmartAcc
        windows extracted at once spent a fifth of their time starting and joining them.
        """
        with self._pages_lock:
            if self._pages is None:
                self._pages = ThreadPoolExecutor(
                    max_workers=self.settings.http.max_concurrency, thread_name_prefix="smartacc-page"
                )
            return self._pages

    # -- customers ----------------------------------------------------------------------------------------

    def page(self, n: int) -> Page:
        """Customers page ``n`` (from 1) of ``/Customers/page/{n}``: 20 rows, fewer on the last page."""
        if n < 1:
            raise ValueError("SmartAcc pages start at 1")
        ctx = CallContext(SOURCE, "page", page=n)
        return self._customers(f"/Customers/page/{n}", ctx, n)

    def by_edit_date(self, since: date | datetime, page: int = 1) -> Page:
        """Page ``page`` of customers with ``EditDate >= since`` (Malaysia time), oldest edit first.

        A ``date`` is sent as ``YYYY-MM-DD`` (midnight), a ``datetime`` as ``YYYY-MM-DDTHH:MM:SS`` in
        Malaysia wall time (an aware one is converted; a naive one is taken as Malaysia time).
        """
        if page < 1:
            raise ValueError("SmartAcc pages start at 1")
        ctx = CallContext(SOURCE, "by_edit_date", page=page)
        return self._edit_date_page(since, page, ctx).page

    def by_id(self, customer_id: str) -> list[Row]:
        """The customer with this ``AcCustomerID`` as a list (empty when there is none; never a 404)."""
        ctx = CallContext(SOURCE, "by_id")
        return self._lookup_by("CustomerID", "AcCustomerID", customer_id, ctx)

    def by_mobile(self, mobile_no: str) -> list[Row]:
        """Customers with this ``MobileNo`` (0..n)."""
        ctx = CallContext(SOURCE, "by_mobile")
        return self._lookup_by("MobileNo", "MobileNo", mobile_no, ctx)

    def _lookup_by(self, route: str, name: str, value: str, ctx: CallContext) -> list[Row]:
        if not value:
            raise ValueError(f"an empty {name} would change the route")
        if _PATH_UNSAFE.search(value):
            # A "/" survives no path segment (servers decode %2F before routing), so such a value goes in
            # the query string, which ServiceStack binds to the same request DTO (SMARTACC.md §1).
            path, params = "/Customers", {name: value}
        else:
            path, params = f"/Customers/{route}/{quote(value, safe='')}", {}
        body, _ = self._call("GET", path, params, ctx, "Customers")
        return [record_row(item) for item in body["Customers"]]

    # -- lookups ------------------------------------------------------------------------------------------

    def terms(self) -> Page:
        """The Terms lookup (``AcTermID`` → ``TermDays``), one unpaged response (§5)."""
        return self._lookup("/Terms", "Terms", CallContext(SOURCE, "terms"))

    def customer_areas(self) -> Page:
        """The CustomerAreas lookup, one unpaged response (§5)."""
        return self._lookup("/CustomerAreas", "CustomerAreas", CallContext(SOURCE, "customer_areas"))

    def customer_groups(self) -> Page:
        """Every customer group, paged with ``RecordsPerPage`` until ``TotalRecords`` are read (§5).

        Returns one :class:`Page` with all rows; ``request_id`` is the last call's and ``page`` the number
        of pages read.
        """
        rows: list[Row] = []
        request_id = ""
        n = 0
        while True:
            n += 1
            ctx = CallContext(SOURCE, "customer_groups", page=n)
            body, request_id = self._call(
                "GET",
                f"/CustomerGroups/page/{n}",
                {"RecordsPerPage": str(GROUPS_PER_PAGE)},
                ctx,
                "CustomerGroups",
            )
            batch = body["CustomerGroups"]
            rows.extend(text_row(item) for item in batch)
            total = int_or_none(body.get("TotalRecords"))
            if not batch or len(rows) >= (total if total is not None else len(rows) + 1):
                break
            if total is None and len(batch) < GROUPS_PER_PAGE:
                break  # no total given: a short page is the last
        return Page(rows=rows, request_id=request_id, page=n)

    def test_connection(self) -> tuple[bool, str]:
        """Whether the credentials can read customers: page 1, for hooks."""
        try:
            page = self.page(1)
        except SkysmartError as exc:
            return False, redact(f"{type(exc).__name__}: {exc}")
        return True, (
            f"SmartAcc customer read ok ({len(page.rows)} row(s) on page 1, request_id={page.request_id})"
        )

    # -- a window, concurrently and consistently ----------------------------------------------------------

    # Why iter_window looks the way it does (SMARTACC.md §9, "Rows inserted/edited while paging"):
    #
    # The EditDate route is offset paging over (EditDate, AcCustomerID). An edit moves a customer to the end
    # (EditDate = now) and every row behind its old slot one place earlier. If that happens between two page
    # fetches, the row that slid over a page boundary is never seen (or one is seen twice). Concurrent,
    # out-of-order page fetches make that possible wherever the edited row was, so:
    #
    # 1. A *pass* fetches pages concurrently (speculative batches, no page count is known) from the window's
    #    first day until the first short page or the first page that ends past the window.
    # 2. It then asks the EditDate route for rows edited since the pass began, measured on the server's
    #    clock (the HTTP ``Date`` of the earliest page; it is whole seconds, so it errs early). An edit
    #    stamped before the first page was served cannot shift anything between our fetches. No rows: nothing
    #    moved while we read, the pass is a consistent snapshot of the window, and it is the answer.
    # 3. Otherwise the pass is repeated, up to ``max_passes``. A clean pass *replaces* the dirty ones
    #    rather than being merged with them: a row seen only in a dirty pass has since left the window
    #    (there are no deletes, and EditDate only moves forward), so merging would resurrect a stale copy.
    # 4. When every pass is dirty (a busy tenant), a sequential keyset read takes over: fetch page 1 at a
    #    datetime cursor, move the cursor to the last row's EditDate (to the millisecond), repeat. Each
    #    request is one atomic answer and every row edited before the last row's EditDate is on that page,
    #    so no row can be skipped however the data changes (>= 20 rows with one EditDate are re-read until
    #    two reads agree).
    #    A second keyset read of rows edited since the first began supplies their newer versions.
    # 5. Every customer is kept once, in its newest (EditDate, Stamp) version, and only if that version's
    #    EditDate lies in the window: a customer edited while we read moved to a later window, exactly like
    #    SkyBiz, where an edited customer leaves old windows (SKYBIZ.md §9.5).

    def iter_window(self, window: Window) -> Iterator[Page]:
        """Every customer whose EditDate falls in the window (Malaysia dates, both inclusive), once each.

        Guarantees, for the window as it stood when the read finished:

        * every customer whose EditDate lies in the window and was not edited after our last request is
          yielded exactly once, in its newest (EditDate, Stamp) version, even while the data is being
          edited (see the comment above this method);
        * a customer whose newest seen version lies outside the window is not yielded (it belongs to a
          later window);
        * pages come in a stable order — by (EditDate, AcCustomerID) — each holding the rows that one
          request returned, with that request's id and page number as lineage.

        All requests happen before the first page is yielded (de-duplication needs the whole window), so
        memory holds one window's rows. :attr:`last_window_stats` tells how the window was read.

        Raises:
            WindowError: not a SmartAcc window.
            SkysmartError: the typed error of a failed request (retries exhausted, refused, ...).
        """
        if window.source != SOURCE:
            raise WindowError(
                f"a {window.source} window cannot be read from SmartAcc", source=SOURCE, window=window.key
            )
        started = time.monotonic()
        counter = _Counter()
        final: list[_Rec] | None = None
        passes = 0
        while final is None and passes < self.max_passes:
            passes += 1
            final = self._pass(window, passes, counter)
        fallback = final is None
        if final is None:
            final = self._keyset_window(window, counter)
        final.sort(key=lambda rec: rec.order)
        self.last_window_stats = WindowStats(
            window=window.key,
            passes=passes,
            fallback=fallback,
            requests=counter.requests,
            rows_received=counter.received,
            duplicates_dropped=max(0, counter.received - len(final)),
            rows=len(final),
            seconds=round(time.monotonic() - started, 3),
        )
        yield from _pages(final)

    def _pass(self, window: Window, number: int, counter: _Counter) -> list[_Rec] | None:
        """One concurrent pass; the window's rows if nothing moved while it ran, else ``None``."""
        before = datetime.now(UTC) - self.clock_margin
        fetched, listed = self._concurrent_pages(window, number, counter)
        served = [f.served_at for f in fetched if f.served_at is not None]
        since = min(served) if len(served) == len(fetched) else before
        # Placing may read the next window's first page; the check comes after it, so covers it too.
        recs = self._place(listed, window, counter)
        ctx = CallContext(SOURCE, "edited_since_check", window=window.key, page=1)
        counter.add(requests=1)
        check = self._edit_date_page(_cursor(since), 1, ctx)
        counter.add(received=len(recs))
        newest = _newest(recs)
        # A row met twice inside one pass is a shift seen directly: dirty even if the check saw nothing.
        if check.page.rows or len(newest) != len(recs):
            return None
        return list(newest.values())

    def _concurrent_pages(
        self, window: Window, number: int, counter: _Counter
    ) -> tuple[list[_Fetched], list[_Rec]]:
        """Pages 1..k of the EditDate route from the window's first day, ``max_concurrency`` in flight.

        Pages are requested speculatively (the count is unknown) but read strictly in page order, row by
        row, and the pass stops at the first row past the window's end (or the first short page): rows
        after that row, and pages fetched beyond it, are never interpreted, so nothing a later window holds
        can affect this one however the fetches interleave.

        Returns:
            The pages read, and the rows up to (not including) the first row past the window.
        """
        width = self.settings.http.max_concurrency
        end = window.end_utc_exclusive
        results: dict[int, Future[_Fetched]] = {}
        listed: list[_Rec] = []
        after = datetime.combine(window.start, datetime.min.time(), MYT)
        last: int | None = None
        scanned = 0
        next_page = 1
        horizon = 1  # the last page worth requesting yet: page 1 alone, until a page shows how dense it is

        def fetch(n: int) -> _Fetched:
            ctx = CallContext(SOURCE, f"window pass {number}", window=window.key, page=n)
            counter.add(requests=1)
            return self._edit_date_page(window.start, n, ctx)

        pool = self._page_pool()
        pending: dict[Future[_Fetched], int] = {}
        try:
            while last is None:
                # Speculate at most two widths ahead of the page being read, so a slow page 1 cannot
                # make the pass run through the whole table.
                while len(pending) < width and next_page <= min(horizon, scanned + 2 * width):
                    pending[pool.submit(fetch, next_page)] = next_page
                    next_page += 1
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    results[pending.pop(future)] = future
                # Read the pages that are now contiguous with the last one read, in page order. A page's
                # error is raised only here, so a failed fetch past the window's end fails nothing.
                while last is None and (scanned + 1) in results:
                    scanned += 1
                    page = results[scanned].result()
                    recs, past_end = page.recs(after, len(listed), end)
                    listed.extend(recs)
                    if recs:
                        after = recs[-1].at
                    if past_end or len(page.page.rows) < PAGE_SIZE:
                        last = scanned
                    else:
                        horizon = max(scanned + 1, _pages_expected(window, after, len(listed)))
        finally:
            # Fetches not started are dropped; those under way end before the pass does.
            for future in pending:
                future.cancel()
            wait(list(pending))
        return [results[n].result() for n in range(1, last + 1)], listed

    def _keyset_window(self, window: Window, counter: _Counter) -> list[_Rec]:
        """The fallback: a sequential keyset read of the window, then of everything edited since it began.

        Rows of the second read only supply newer versions; one whose EditDate cannot be read there says
        nothing about where the customer now is, so it is not used (its window's own read keeps it).
        """
        start = datetime.combine(window.start, datetime.min.time(), MYT)
        recs, began = self._keyset(start, window.end_utc_exclusive, window, counter)
        later, _ = self._keyset(_cursor(began), None, window, counter)
        placed = self._place(recs, window, counter)
        counter.add(received=len(placed))
        newest = _newest([*placed, *(rec for rec in later if rec.edited is not None)])
        return [rec for rec in newest.values() if rec.edited is None or window.contains(rec.edited)]

    def _place(self, listed: Sequence[_Rec], window: Window, counter: _Counter) -> list[_Rec]:
        """The rows of an EditDate listing (from the window's first day, in server order) that are in it.

        A readable row is in the window by its EditDate. A row whose EditDate cannot be read lies, in the
        server's order, between its readable neighbours: in the window when the next readable row is. The
        unreadable rows after the window's last readable row could be this window's or the next's; the
        listing that starts where the next window does decides: those it begins with are not ours.
        """
        end = window.end_utc_exclusive
        following: list[datetime | None] = []
        upcoming: datetime | None = None
        for rec in reversed(listed):
            following.append(upcoming)
            if rec.edited is not None:
                upcoming = rec.edited
        following.reverse()
        out: list[_Rec] = []
        unsure: set[int] = set()
        for rec, after in zip(listed, following, strict=True):
            if rec.edited is not None:
                if window.contains(rec.edited):
                    out.append(rec)
            elif rec.at < end:
                if after is None or after >= end:
                    unsure.add(len(out))
                out.append(rec)
        if unsure:
            later = self._next_window_head(window, counter)
            out = [rec for i, rec in enumerate(out) if i not in unsure or rec.key not in later]
        return out

    def _next_window_head(self, window: Window, counter: _Counter) -> set[str]:
        """Keys of the unreadable-EditDate rows the listing from the day after the window begins with."""
        cursor = window.end_utc_exclusive.astimezone(MYT)
        keys: set[str] = set()
        n = 0
        while True:
            n += 1
            ctx = CallContext(SOURCE, "window end", window=window.key, page=n)
            counter.add(requests=1)
            fetched = self._edit_date_page(cursor, n, ctx)
            recs, _ = fetched.recs(cursor)
            for rec in recs:
                if rec.edited is not None:
                    return keys
                keys.add(rec.key)
            if len(fetched.page.rows) < PAGE_SIZE:
                return keys

    def _keyset(
        self, cursor: datetime, stop: datetime | None, window: Window, counter: _Counter
    ) -> tuple[list[_Rec], datetime]:
        """Rows with EditDate >= ``cursor`` (until one reaches ``stop``), read so that none can be skipped.

        The cursor moves to the last *readable* EditDate; rows after it are read again from there and
        de-duplicated by the caller.

        Returns the rows and when the read began on the server's clock.
        """
        out: list[_Rec] = []
        began: datetime | None = None
        fallback_began = datetime.now(UTC) - self.clock_margin
        while True:
            fetched, at_end = self._read_at(cursor, window, counter)
            if began is None:
                began = fetched[0].served_at or fallback_began
            recs = _listing(fetched, cursor, len(out))
            out.extend(recs)
            readable = [rec for rec in recs if rec.edited is not None]
            if at_end or (stop is not None and readable and readable[-1].at >= stop):
                return out, began
            if not readable:  # _read_at reads on until a readable row: cannot happen, but never loop
                raise _unplaceable(recs[0], window)
            cursor = _cursor(readable[-1].at)

    def _read_at(self, cursor: datetime, window: Window, counter: _Counter) -> tuple[list[_Fetched], bool]:
        """Page 1 at ``cursor``; more pages only while a full page gets no readable row past the cursor.

        That is >= 20 rows tied at the cursor's EditDate, or a page of rows whose EditDate cannot be read.
        Returns the pages and whether the data ended (a short page). The next cursor, the last readable
        row's EditDate, is then strictly later than ``cursor``.
        """

        def fetch(n: int) -> _Fetched:
            ctx = CallContext(SOURCE, "window keyset", window=window.key, page=n)
            counter.add(requests=1)
            return self._edit_date_page(cursor, n, ctx)

        def stuck(page: _Fetched) -> bool:
            # A full page that does not get past the cursor (only ties at the cursor's EditDate, or nothing
            # readable; "<=" also keeps a server that ignored the milliseconds from sending the cursor
            # backwards).
            if len(page.page.rows) < PAGE_SIZE:
                return False
            readable = [rec.edited for rec in page.recs(cursor)[0] if rec.edited is not None]
            return not readable or _cursor(readable[-1]) <= cursor

        first = fetch(1)
        if not stuck(first):
            return [first], len(first.page.rows) < PAGE_SIZE
        # A group under one cursor is read with offset pages, which an edit in the group could shift. Read
        # the group until two reads list the same rows.
        previous: list[str] | None = None
        pages = [first]
        for _ in range(_GROUP_READS):
            while stuck(pages[-1]):
                pages.append(fetch(len(pages) + 1))
            group = [rec.key for rec in _listing(pages, cursor) if _cursor(rec.at) <= cursor]
            if group == previous:
                return pages, len(pages[-1].page.rows) < PAGE_SIZE
            previous = group
            pages = [fetch(1)]
        raise TransientApiError(
            f"customers edited at {cursor.isoformat()} kept changing while being read",
            source=SOURCE,
            window=window.key,
        )

    # -- requests -----------------------------------------------------------------------------------------

    def _edit_date_page(self, since: date | datetime, page: int, ctx: CallContext) -> _Fetched:
        path = f"/Customers/EditDate/{_edit_date_text(since)}"
        body, request_id, served = self._call_with_clock("GET", path, {"Page": str(page)}, ctx, "Customers")
        out = Page(rows=[record_row(item) for item in body["Customers"]], request_id=request_id, page=page)
        return _Fetched(page=out, served_at=served)

    def _customers(self, path: str, ctx: CallContext, page: int) -> Page:
        body, request_id = self._call("GET", path, {}, ctx, "Customers")
        return Page(rows=[record_row(item) for item in body["Customers"]], request_id=request_id, page=page)

    def _lookup(self, path: str, key: str, ctx: CallContext) -> Page:
        body, request_id = self._call("GET", path, {}, ctx, key)
        return Page(rows=[text_row(item) for item in body[key]], request_id=request_id, page=1)

    def _call(
        self, method: str, path: str, params: Mapping[str, str], ctx: CallContext, key: str
    ) -> tuple[dict[str, Any], str]:
        body, request_id, _ = self._call_with_clock(method, path, params, ctx, key)
        return body, request_id

    def _call_with_clock(
        self, method: str, path: str, params: Mapping[str, str], ctx: CallContext, key: str
    ) -> tuple[dict[str, Any], str, datetime | None]:
        """One authenticated call: log in first when using credentials, and once more after a 401."""
        for attempt in (1, 2):
            generation = self._ensure_login(ctx)
            try:
                return self.http.request(
                    method,
                    f"{self.base_url}{path}",
                    ctx=ctx,
                    interpret=lambda resp: self._interpret(resp, ctx, key),
                    params={"format": "json", **params},
                    headers=self._headers,
                    new_request_id=_new_request_id,
                )
            except AuthenticationError as exc:
                if self.settings.api_key or attempt == 2 or exc.status_code != 401:
                    raise
                self._login(ctx, stale_generation=generation)
        raise AssertionError("unreachable")

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.settings.api_key:
            # The one place the key is revealed: straight into the header (SMARTACC.md §2).
            headers["Authorization"] = f"Bearer {self.settings.api_key.reveal()}"
        return headers

    def _ensure_login(self, ctx: CallContext) -> int:
        if self.settings.api_key:
            return 0
        with self._auth_lock:
            if not self._logged_in:
                self._login_locked(ctx)
            return self._auth_generation

    def _login(self, ctx: CallContext, *, stale_generation: int) -> None:
        with self._auth_lock:
            if self._auth_generation == stale_generation:  # nobody logged in again meanwhile
                self._login_locked(ctx)

    def _login_locked(self, ctx: CallContext) -> None:
        assert self.settings.username and self.settings.password
        login_ctx = CallContext(SOURCE, "login", window=ctx.window, page=ctx.page)
        body = {
            "UserName": self.settings.username,
            "Password": self.settings.password.reveal(),
            "RememberMe": True,
        }
        self.http.request(
            "POST",
            f"{self.base_url}/auth/credentials",
            ctx=login_ctx,
            interpret=lambda resp: self._interpret_login(resp, login_ctx),
            json_body=body,
            params={"format": "json"},
            headers={"Accept": "application/json"},
            new_request_id=_new_request_id,
        )
        # Session ids are credentials too: keep them out of anything redact() sees. Only the session cookies
        # (ss-opt holds the word "perm", which must not become a mask for every "permission").
        for cookie in self.http.cookies:
            if cookie.name in _SESSION_COOKIES and cookie.value:
                register_secret(cookie.value)
        self._logged_in = True
        self._auth_generation += 1

    # -- responses ----------------------------------------------------------------------------------------

    def _interpret(
        self, resp: JsonResponse, ctx: CallContext, key: str
    ) -> tuple[dict[str, Any], str, datetime | None]:
        assert resp.request_id is not None
        body = resp.body
        raise_for_response_status(resp, ctx)
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise ApiError(
                f"{ctx.describe()}: HTTP {resp.status_code} without a {key} list",
                **ctx.error_fields(),
                request_id=resp.request_id,
                status_code=resp.status_code,
            )
        # A customer item that is not an object is one hostile record (kept by record_row, quarantined
        # by normalization); in a lookup it would leave the lookup unusable.
        if key != "Customers" and not all(isinstance(item, dict) for item in body[key]):
            raise ApiError(
                f"{ctx.describe()}: {key} holds something other than records",
                **ctx.error_fields(),
                request_id=resp.request_id,
            )
        return body, resp.request_id, _server_time(resp.headers.get("Date"))

    def _interpret_login(self, resp: JsonResponse, ctx: CallContext) -> None:
        raise_for_response_status(resp, ctx)
        session_id = resp.body.get("SessionId") if isinstance(resp.body, dict) else None
        if isinstance(session_id, str) and session_id:
            register_secret(session_id)
        elif not self.http.cookies:
            raise AuthenticationError(
                f"{ctx.describe()}: login answered without a session",
                **ctx.error_fields(),
                request_id=resp.request_id,
                status_code=resp.status_code,
            )


def raise_for_response_status(resp: JsonResponse, ctx: CallContext) -> None:
    """Raise the typed error of a ServiceStack ``ResponseStatus`` or an error status (SMARTACC.md §7)."""
    body = resp.body if isinstance(resp.body, dict) else {}
    status = body.get("ResponseStatus")
    status = status if isinstance(status, dict) else {}
    code = status.get("ErrorCode") if isinstance(status.get("ErrorCode"), str) else None
    message = status.get("Message") if isinstance(status.get("Message"), str) else None
    if resp.status_code < 400 and not code and not message:
        return
    text = f"{ctx.describe()}: HTTP {resp.status_code}{f' {code}' if code else ''}: {message or 'no message'}"
    http_status = resp.status_code
    if http_status < 400:
        # An error body on a success status: let the ErrorCode say what it was.
        http_status = {"Unauthorized": 401, "AuthenticationException": 401, "Forbidden": 403}.get(
            code or "", 403 if code == "UnauthorizedAccessException" else 400
        )
    if http_status == 404 and message == "ApiKey does not exist":
        raise AuthenticationError(
            text, **ctx.error_fields(), request_id=resp.request_id, status_code=resp.status_code
        )
    raise status_error(
        http_status,
        text,
        ctx,
        request_id=resp.request_id,
        retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
    )


# -- helpers --------------------------------------------------------------------------------------------


def _new_request_id() -> str:
    return f"sa-{uuid.uuid4().hex}"


def _edit_date_text(since: date | datetime) -> str:
    if isinstance(since, datetime):
        local = since.astimezone(MYT) if since.tzinfo is not None else since
        text = local.strftime("%Y-%m-%dT%H:%M:%S")
        # Whole seconds give the documented form; a keyset cursor carries EditDate's milliseconds, which
        # ServiceStack's ISO-8601 parser accepts (SMARTACC.md §6) and which keep ties rare.
        return f"{text}.{local.microsecond // 1000:03d}" if local.microsecond else text
    return since.isoformat()


def _cursor(moment: datetime) -> datetime:
    """A keyset cursor: the instant in Malaysia time, to the millisecond (EditDate's resolution)."""
    local = moment.astimezone(MYT)
    return local.replace(microsecond=local.microsecond // 1000 * 1000)


def _server_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _rec(row: Row, request_id: str, page: int, after: datetime, seq: int) -> _Rec:
    """What paging needs of a row (id, EditDate, Stamp); never fails, whatever the row holds.

    A row without an id or a readable EditDate is kept exactly as sent: normalization quarantines it
    (``id_missing``, ``modified_at_missing``/``modified_at_unparseable``) where it can be seen and re-driven.
    """
    ident = row.get("AcCustomerID")
    key = ident if ident and ident.strip() else "\x00" + json.dumps(row, sort_keys=True, ensure_ascii=False)
    try:
        edited = parse_servicestack_date(row.get("EditDate"))
    except ValueError:
        edited = None
    stamp = int_or_none(row.get("Stamp"))
    return _Rec(
        row=row,
        key=key,
        edited=edited,
        at=edited if edited is not None else after,
        stamp=-1 if stamp is None else stamp,
        request_id=request_id,
        page=page,
        seq=seq,
    )


def _listing(pages: Sequence[_Fetched], cursor: datetime, seq: int = 0) -> list[_Rec]:
    """The rows of consecutive pages of one listing that began at ``cursor``, each placed in order."""
    out: list[_Rec] = []
    after = cursor
    for fetched in pages:
        recs, _ = fetched.recs(after, seq + len(out))
        out.extend(recs)
        if recs:
            after = recs[-1].at
    return out


def _unplaceable(rec: _Rec, window: Window) -> ApiError:
    """The error for a row that nothing places in the EditDate order; it names the row."""
    ident = rec.row.get("AcCustomerID")
    return ApiError(
        f"customer row at page {rec.page} cannot be placed in the EditDate order: no readable EditDate "
        f"around it (EditDate={(rec.row.get('EditDate') or '')[:80]!r})",
        source=SOURCE,
        window=window.key,
        record_key=ident or None,
        field="EditDate",
        request_id=rec.request_id,
    )


def _newest(recs: Sequence[_Rec]) -> dict[str, _Rec]:
    out: dict[str, _Rec] = {}
    for rec in recs:
        kept = out.get(rec.key)
        if kept is None or rec.version > kept.version:
            out[rec.key] = rec
    return out


def _pages(recs: Sequence[_Rec]) -> Iterator[Page]:
    """Consecutive rows from the same request become one page, keeping that request's lineage."""
    rows: list[Row] = []
    source: tuple[str, int] | None = None
    for rec in recs:
        here = (rec.request_id, rec.page)
        if source is not None and (here != source or len(rows) >= PAGE_SIZE):
            yield Page(rows=rows, request_id=source[0], page=source[1])
            rows = []
        source = here
        rows.append(rec.row)
    if rows and source is not None:
        yield Page(rows=rows, request_id=source[0], page=source[1])


def _pages_expected(window: Window, reached: datetime, rows: int) -> int:
    """Pages a pass over ``window`` should need, judged from the ``rows`` read up to EditDate ``reached``.

    The rows so far cover a share of the window's time; at that density (plus a tenth) the window holds so
    many rows, and the page after its last row shows the end. Requesting only up to there keeps a small
    window from costing ``max_concurrency`` speculative pages; a wrong guess costs a round trip, not a row.
    """
    covered = (reached - window.start_utc) / (window.end_utc_exclusive - window.start_utc)
    if covered <= 0:
        return sys.maxsize  # every row so far at the window's first instant: no density to go by
    return math.ceil((rows / min(covered, 1.0) * 1.1 + 1) / PAGE_SIZE)


__all__ = [
    "PAGE_SIZE",
    "SmartAccClient",
    "WindowStats",
    "parse_servicestack_date",
    "parse_servicestack_dates",
]
