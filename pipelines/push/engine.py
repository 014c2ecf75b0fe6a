"""Push SmartAcc customers into SkyBiz as create batches, exactly once.

SkyBiz takes at most 500 documents per request, refuses the whole batch when one document is invalid, and
has no idempotency key (shared/api/SKYBIZ.md §5, §9). So:

* every document is checked client-side first (:mod:`pipelines.push.validate`); an invalid one is recorded
  ``rejected`` with its field and never sent;
* a batch SkyBiz refuses is answered by taking out exactly the documents ``fail_details`` names and sending
  the rest again; when the answer names none, the batch is split in two until the culprit stands alone. A
  currency SkyBiz says does not exist is remembered for the rest of the run, so later batches do not trip
  over it again;
* the outbox (:mod:`pipelines.push.outbox`) is written before and after every request. A request whose
  answer was lost (timeout, dropped connection, 5xx, a crash before the answer was recorded) leaves its
  documents ``sent``; before any of them is sent again, SkyBiz is *read* to see whether it was created.
  "Customer code already exists" is success for a document with an unanswered attempt, and a conflict
  (``needs_review``) for one we never sent.

Existence is decided by identity resolution only (``customer_matches``, see :mod:`pipelines.push.select`).
Before a real push, the warehouse must hold SkyBiz without gaps from the declared start of its history
through today (:mod:`pipelines.push.coverage`): a SkyBiz customer whose window was never loaded would look
missing, and be created a second time. A dry run reports the problem instead of refusing.

One push at a time per warehouse: run it from one DAG with ``max_active_runs=1`` or one terminal.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from pipelines.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    CreateOutcomeUnknownError,
    PermissionDeniedError,
    PushConflictError,
    PushValidationError,
    RateLimitedError,
    RequestRejectedError,
    SkysmartError,
    TransientApiError,
)
from pipelines.push.coverage import COVERED_FROM_VAR, STALENESS_VAR, Coverage, skybiz_coverage
from pipelines.push.mapping import DEFAULT_MAPPING, PushMapping, Value, canonical_json, load_mapping
from pipelines.push.outbox import KEEP, Outbox, OutboxEntry, OutboxEvent, OutboxState
from pipelines.push.ports import SkyBizLike, WarehouseLike
from pipelines.push.select import Candidate, Counterpart, select_customers
from pipelines.push.validate import MAX_BATCH, CreateRules, reason_text, validate_documents
from pipelines.sources.skybiz.client import CreateResult
from pipelines.windows import MYT, plan_windows

# create: send it; verify: an earlier request may have created it, read SkyBiz first; invalid: refused
# client-side; rejected: SkyBiz refused this very document before; needs_review: a code conflict.
Action = Literal["create", "verify", "invalid", "rejected", "needs_review"]
ALREADY_EXISTS: Final = "Customer code already exists"
SAME_BATCH: Final = "Duplicate CusCode found in the same batch"
READ_BACK: Final = "created by an earlier request whose answer was lost; read back"
_CURRENCY = re.compile(r"Currency code '(?P<code>[^']*)' does not exist")
_MISSING = re.compile(r"Missing fields - (?P<fields>.+)$")


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How a push behaves; the defaults suit a tenant that follows the vendor documents.

    Attributes:
        mapping: the mapping file in ``data_contracts/`` (without ``.yaml``).
        batch_size: documents per request, at most 500 (SkyBiz's limit).
        defaults: field defaults for this run, over the mapping's (e.g. ``{"AccountCode": "AR-002"}``).
        currencies: the SkyBiz currency table; ``None`` uses the mapping's ``skybiz_currencies``.
        include_inactive: also push customers SmartAcc marks inactive.
        max_attempts: requests one document may ride in one run before it is left for the next run.
        max_waits: how often one run waits out a 429 or a connection that would not open, before giving up.
        wait_seconds: the wait when a 429 carries no ``Retry-After``.
        verify_filtered_max: up to this many unknown outcomes are checked with one filtered read each
            (``filters: {"CusCode": ...}``, tiny answers); more are checked with one ``CusCode``-only read
            per window, which is one request however many documents a lost batch held.
        verify_lookback_days: read back from this many days before the attempt (clock skew, midnight).
        skybiz_covered_from: the first day of the tenant's SkyBiz history, which the warehouse must hold
            from there through today before a real push; ``None`` (not declared) refuses a real push —
            no default is taken from what happens to be loaded.
        max_staleness_days: the newest loaded SkyBiz day may lie at most this many days before today
            (Malaysia); older, and SkyBiz customers created since are invisible to the push.
    """

    mapping: str = DEFAULT_MAPPING
    batch_size: int = MAX_BATCH
    defaults: Mapping[str, Value] = field(default_factory=dict)
    currencies: tuple[str, ...] | None = None
    include_inactive: bool = False
    max_attempts: int = 5
    max_waits: int = 10
    wait_seconds: float = 1.0
    verify_filtered_max: int = 10
    verify_lookback_days: int = 1
    skybiz_covered_from: date | None = None
    max_staleness_days: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"batch_size must be 1..{MAX_BATCH}, got {self.batch_size}", field="batch_size")
        if self.max_staleness_days < 0:
            raise ConfigError(
                f"max_staleness_days must be 0 or more, got {self.max_staleness_days}",
                field="max_staleness_days",
            )

    def declaring(self, covered_from: str | date | None) -> PushSettings:
        """These settings with the start of SkyBiz's history declared (a flag or DAG param over the env).

        ``None`` or ``""`` keeps the current value; text must be ``YYYY-MM-DD``.
        """
        if covered_from is None or covered_from == "":
            return self
        if isinstance(covered_from, str):
            try:
                covered_from = date.fromisoformat(covered_from.strip())
            except ValueError:
                raise ConfigError(
                    f"the start of SkyBiz's history must be a date, YYYY-MM-DD, got {covered_from!r}",
                    field="skybiz_covered_from",
                ) from None
        return dataclasses.replace(self, skybiz_covered_from=covered_from)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PushSettings:
        """Per-tenant settings from ``SKYSMART_PUSH_*`` (the CLI and the DAG read the same variables).

        ``CURRENCIES=RM,SGD,USD,EUR`` (the tenant's SkyBiz currency table), ``DEFAULTS=AccountCode=AR-002,
        CategoryCode=TRADE``, ``BATCH_SIZE=500``,
        ``INCLUDE_INACTIVE=1``, ``SKYBIZ_COVERED_FROM=2021-01-01``, ``MAX_STALENESS_DAYS=2``. Unset (or
        empty) variables keep the defaults.
        """
        from pipelines.env import PushEnv, read_env

        values = read_env(PushEnv, env).model_dump()

        def get(name: str) -> str | None:
            value: str | None = values[name.lower()]
            return value

        def listed(raw: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in raw.split(",") if part.strip())

        currencies = get("CURRENCIES")
        defaults: dict[str, Value] = {}
        for pair in listed(get("DEFAULTS") or ""):
            field_name, sep, value = pair.partition("=")
            if not sep or not field_name.strip():
                raise ConfigError(f"SKYSMART_PUSH_DEFAULTS: {pair!r} is not FIELD=VALUE", field="DEFAULTS")
            defaults[field_name.strip()] = value.strip()
        batch = get("BATCH_SIZE")
        try:
            batch_size = int(batch) if batch else MAX_BATCH
        except ValueError:
            raise ConfigError(f"SKYSMART_PUSH_BATCH_SIZE must be a whole number, got {batch!r}") from None
        covered = get("SKYBIZ_COVERED_FROM")
        try:
            covered_from = date.fromisoformat(covered) if covered else None
        except ValueError:
            raise ConfigError(
                f"{COVERED_FROM_VAR} must be a date, YYYY-MM-DD, got {covered!r}", field="SKYBIZ_COVERED_FROM"
            ) from None
        staleness = get("MAX_STALENESS_DAYS")
        try:
            max_staleness_days = int(staleness) if staleness else 2
        except ValueError:
            raise ConfigError(
                f"{STALENESS_VAR} must be a whole number of days, got {staleness!r}",
                field="MAX_STALENESS_DAYS",
            ) from None
        return cls(
            batch_size=batch_size,
            defaults=defaults,
            currencies=tuple(c.upper() for c in listed(currencies)) if currencies else None,
            include_inactive=(get("INCLUDE_INACTIVE") or "").lower() in ("1", "true", "yes"),
            skybiz_covered_from=covered_from,
            max_staleness_days=max_staleness_days,
        )


@dataclass(frozen=True, slots=True)
class PushResult:
    """What one push did; each selected customer ends in exactly one of the five outcome counts.

    ``selected == invalid + created + rejected + needs_review + unresolved``.

    Attributes:
        selected: SmartAcc customers without a SkyBiz counterpart that this run took on (``limit`` applied).
        valid: of those, the ones that passed client-side validation.
        invalid: refused client-side (outbox ``rejected``, never sent).
        already_exists: SmartAcc customers SkyBiz already has (by CusCode, by the outbox, or matched).
        created: customers now ``created`` that were not before this run.
        rejected: refused by SkyBiz (this run, or earlier with the same document).
        needs_review: SkyBiz has the code but we never sent it, or two customers share one code.
        unresolved: still ``pending``/``sent`` after the run (SkyBiz kept failing); the next run settles them.
        confirmed: of ``created``, those whose answer was lost and which a read-back (or an "already
            exists" answer) confirmed.
        to_create: documents the run set out to send (a dry run: would send).
        requests: create requests sent.
        batches: create requests SkyBiz saved (a dry run: batches it would take).
        reads: read requests made to settle unknown outcomes.
        dry_run: nothing was written or sent.
        run_id: the id written to the outbox rows this run changed.
        coverage_problem: why the warehouse's SkyBiz data cannot be trusted to say what SkyBiz lacks (gaps,
            staleness) and what to load; ``None`` when it can. A dry run reports it; a real run refuses
            unless told ``allow_partial_coverage``, and then reports it too.
    """

    selected: int
    valid: int
    invalid: int
    already_exists: int
    created: int
    rejected: int
    needs_review: int
    requests: int
    batches: int
    unresolved: int = 0
    confirmed: int = 0
    to_create: int = 0
    reads: int = 0
    dry_run: bool = False
    run_id: str = ""
    coverage_problem: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedCustomer:
    """One selected customer and what the push will do with it."""

    customer_key: str
    cus_code: str
    action: Action
    reason: str | None
    document: Mapping[str, Value]
    payload_hash: str


@dataclass(frozen=True, slots=True)
class PushPlan:
    """Everything a push would do, decided before anything is sent; what a dry run prints."""

    items: tuple[PlannedCustomer, ...]
    counterparts: tuple[Counterpart, ...]
    batch_size: int
    coverage_problem: str | None = None

    def of(self, *actions: Action) -> list[PlannedCustomer]:
        """The planned customers with one of these actions."""
        return [item for item in self.items if item.action in actions]

    def result(self, run_id: str = "") -> PushResult:
        """The counts a dry run reports."""
        invalid = len(self.of("invalid"))
        to_create = len(self.of("create", "verify"))
        return PushResult(
            selected=len(self.items),
            valid=len(self.items) - invalid,
            invalid=invalid,
            already_exists=len(self.counterparts),
            created=0,
            rejected=len(self.of("rejected")),
            needs_review=len(self.of("needs_review")),
            requests=0,
            batches=math.ceil(to_create / self.batch_size),
            to_create=to_create,
            dry_run=True,
            run_id=run_id,
            coverage_problem=self.coverage_problem,
        )


@dataclass(frozen=True, slots=True)
class PushProgress:
    """Reported after every request, for progress bars."""

    settled: int
    total: int
    requests: int
    created: int
    rejected: int


ProgressCallback = Callable[[PushProgress], None]


def plan_push(
    warehouse: WarehouseLike, *, limit: int | None = None, settings: PushSettings = PushSettings()
) -> PushPlan:
    """Decide, without writing or sending anything, what a push would do with each SmartAcc customer.

    The plan carries the SkyBiz coverage problem, if any, so what prints it can warn that a real push
    would be refused.
    """
    mapping = load_mapping(settings.mapping)
    problem = check_coverage(warehouse, settings).problem
    entries = Outbox(warehouse).load()
    return _plan(
        warehouse, entries, mapping, _rules(mapping, settings), limit, settings, problem, write_matches=False
    )


def check_coverage(warehouse: WarehouseLike, settings: PushSettings = PushSettings()) -> Coverage:
    """How completely the warehouse holds SkyBiz, against ``settings``' start date and staleness."""
    return skybiz_coverage(
        warehouse, covered_from=settings.skybiz_covered_from, max_staleness_days=settings.max_staleness_days
    )


def push_customers(
    warehouse: WarehouseLike,
    client: SkyBizLike | None,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    settings: PushSettings = PushSettings(),
    allow_partial_coverage: bool = False,
    progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Create the SmartAcc customers SkyBiz lacks, in batches of at most 500, each exactly once.

    Args:
        warehouse: holds ``customers`` (both sources) and the outbox.
        client: the SkyBiz client; may be ``None`` for a dry run, which never calls SkyBiz.
        dry_run: decide and count only; write nothing (not even the outbox) and send nothing.
        limit: take on at most this many customers (earlier unsettled attempts first).
        settings: batch size, defaults, currency table, matching, retry bounds, required SkyBiz coverage.
        allow_partial_coverage: push even when SkyBiz is not loaded without gaps up to recently (an
            operator who knows the missing days hold no customer the push could duplicate).
        progress: called after every request.
        sleep: how to wait out a 429 (tests pass a recorder).

    Raises:
        PushCoverageError: a real push on a warehouse whose SkyBiz coverage has gaps, is stale or is
            empty (and no ``allow_partial_coverage``); nothing was sent or written.
        AuthenticationError, PermissionDeniedError: SkyBiz refused the key; the outbox says what is pending.
        RateLimitedError, TransientApiError: SkyBiz kept refusing past ``max_waits``; nothing is lost.
    """
    run_id = f"push-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    mapping = load_mapping(settings.mapping)
    rules = _rules(mapping, settings)
    outbox = Outbox(warehouse)
    coverage = check_coverage(warehouse, settings)
    if dry_run:
        plan = _plan(
            warehouse, outbox.load(), mapping, rules, limit, settings, coverage.problem, write_matches=False
        )
        return plan.result(run_id)
    if client is None:
        raise ConfigError("a push that is not a dry run needs a SkyBiz client", field="SKYSMART_SKYBIZ_URL")
    refusal = coverage.error()
    if refusal is not None and not allow_partial_coverage:
        raise refusal  # before the outbox is even created: nothing sent, nothing written
    outbox.ensure()
    entries = outbox.load()
    plan = _plan(warehouse, entries, mapping, rules, limit, settings, coverage.problem, write_matches=True)
    run = _Run(outbox, entries, client, settings, rules, run_id, progress, sleep)
    run.record(plan)
    run.settle_unknown(plan)
    run.send()
    return run.result(plan)


# -- planning -----------------------------------------------------------------------------------------


def _rules(mapping: PushMapping, settings: PushSettings) -> CreateRules:
    currencies = settings.currencies if settings.currencies is not None else mapping.currencies
    return CreateRules.load(currencies, mapping.target_contract)


def _plan(
    warehouse: WarehouseLike,
    entries: Mapping[str, OutboxEntry],
    mapping: PushMapping,
    rules: CreateRules,
    limit: int | None,
    settings: PushSettings,
    coverage_problem: str | None = None,
    *,
    write_matches: bool,
) -> PushPlan:
    selection = select_customers(
        warehouse,
        mapping,
        outbox=entries,
        write_matches=write_matches,
        defaults=settings.defaults,
        include_inactive=settings.include_inactive,
        limit=limit,
    )
    problems = validate_documents([(c.customer_key, c.document) for c in selection.candidates], rules)
    code_owner = {e.cus_code.upper(): e.customer_key for e in entries.values()}
    items = [
        _decide(c, entries.get(c.customer_key), problems[c.customer_key], code_owner)
        for c in selection.candidates
    ]
    return PushPlan(tuple(items), selection.counterparts, settings.batch_size, coverage_problem)


def _decide(
    candidate: Candidate,
    entry: OutboxEntry | None,
    problems: Sequence[PushValidationError],
    code_owner: Mapping[str, str],
) -> PlannedCustomer:
    key, code = candidate.customer_key, candidate.cus_code

    def plan(action: Action, reason: str | None = None) -> PlannedCustomer:
        return PlannedCustomer(key, code, action, reason, candidate.document, candidate.payload_hash)

    if entry is not None and entry.state == OutboxState.SENT:
        return plan("verify", "an earlier request may have created it; SkyBiz is read first")
    owner = code_owner.get(code.upper())
    if owner is not None and owner != key:
        return plan("needs_review", f"CusCode: {code} is already the outbox code of {owner}")
    if candidate.review and (
        entry is None or entry.state not in (OutboxState.PENDING, OutboxState.NEEDS_REVIEW)
    ):
        # A row a person set back to 'pending' is their decision: create it.
        return plan("needs_review", candidate.review)
    all_problems = [*candidate.mapping_problems, *problems]
    if all_problems:
        return plan("invalid", reason_text(all_problems))
    if entry is not None and entry.state == OutboxState.NEEDS_REVIEW:
        return plan("needs_review", entry.reason)  # held until a person resolves it (see docs/push.md)
    if (
        entry is not None
        and entry.state == OutboxState.REJECTED
        and entry.refused_by == "skybiz"
        and entry.payload_hash == candidate.payload_hash
    ):
        return plan("rejected", entry.reason)  # SkyBiz refused this very document; it must change first
    return plan("create")


# -- the run ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RunCounts:
    """What one run has done so far; its result and its progress reports are read from here.

    Attributes:
        total: documents the run set out to send (queued plus those to verify first).
        settled: of those, documents whose outcome is now known (created, rejected, needs review).
        requests: create requests sent.
        saved_batches: create requests SkyBiz saved.
        reads: read requests made to settle unknown outcomes.
        waits: 429s and refused connections waited out (at most ``max_waits``).
        confirmed: documents found created after their answer was lost.
    """

    total: int = 0
    settled: int = 0
    requests: int = 0
    saved_batches: int = 0
    reads: int = 0
    waits: int = 0
    confirmed: int = 0


@dataclass(slots=True)
class _SendLine:
    """What is still to be sent, in the order it goes.

    Attributes:
        queue: documents waiting for a batch, first in line first.
        halves: halves of a batch refused without naming anyone; sent before the queue, last added first.
        tried: requests each document (by customer key) has ridden in this run, against ``max_attempts``.
    """

    queue: deque[OutboxEntry] = field(default_factory=deque)
    halves: list[list[OutboxEntry]] = field(default_factory=list)
    tried: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.halves or self.queue)

    def next_batch(self, size: int) -> list[OutboxEntry]:
        """The next batch: a pending half first, else up to ``size`` from the queue."""
        if self.halves:
            return self.halves.pop()
        return [self.queue.popleft() for _ in range(min(size, len(self.queue)))]

    def put_first(self, entries: Sequence[OutboxEntry]) -> None:
        """Back at the head of the queue, in their order (they go again next)."""
        self.queue.extendleft(reversed(entries))


class _Run:
    """One push run: the outbox entries it changes, the requests it sends, and what it learned.

    Set once: ``outbox``, ``entries`` (every outbox row by customer key, changed in place through
    :meth:`OutboxEntry.apply`), ``client``, ``settings``, ``rules``, ``run_id``, ``progress``, ``sleep``.
    Changing as it runs: ``counts`` (:class:`RunCounts`), ``line`` (what is still to send), and what SkyBiz
    taught it — ``halted`` (SkyBiz could not be read back: stop sending, the next run settles) and
    ``refused_currencies`` (SkyBiz currency code → the request id that said it does not exist).
    """

    def __init__(
        self,
        outbox: Outbox,
        entries: dict[str, OutboxEntry],
        client: SkyBizLike,
        settings: PushSettings,
        rules: CreateRules,
        run_id: str,
        progress: ProgressCallback | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.outbox = outbox
        self.entries = entries
        self.client = client
        self.settings = settings
        self.rules = rules
        self.run_id = run_id
        self.progress = progress
        self.sleep = sleep
        self.counts = RunCounts()
        self.line = _SendLine()
        self.halted = False
        self.refused_currencies: dict[str, str] = {}

    # -- recording the plan -------------------------------------------------------------------------------

    def record(self, plan: PushPlan) -> None:
        """Write ``pending``/``rejected``/``needs_review`` for the whole plan before anything is sent."""
        now = datetime.now(UTC)
        changed: list[OutboxEntry] = []
        for item in plan.items:
            known = self.entries.get(item.customer_key)
            if item.action in ("rejected", "verify") or (
                item.action == "needs_review"
                and known is not None
                and known.state == OutboxState.NEEDS_REVIEW
            ):
                continue  # held, or settled first by reading SkyBiz
            if (
                item.action == "invalid"
                and known is not None
                and (known.state, known.refused_by, known.reason)
                == (OutboxState.REJECTED, "skysmart", item.reason)
                and known.payload_hash == item.payload_hash
            ):
                continue  # refused for the same reason last time: nothing to write
            entry = self._entry(item, now)
            if item.action == "create":
                entry.apply(OutboxEvent.PLAN, reason=None, run_id=self.run_id)
                self.line.queue.append(entry)
            elif item.action == "invalid":
                entry.apply(OutboxEvent.REFUSE, reason=item.reason, run_id=self.run_id)
            else:
                entry.apply(OutboxEvent.HOLD, reason=item.reason, run_id=self.run_id)
            changed.append(entry)
        # A customer SkyBiz now shows under our code, after a request of ours lost its answer: it is ours.
        for part in plan.counterparts:
            ours = self.entries.get(part.customer_key)
            if (
                ours is not None
                and part.matched_by == "cus_code"
                and (
                    ours.state == OutboxState.SENT
                    or (ours.state == OutboxState.PENDING and ours.unanswered_attempts)
                )
            ):
                reason = "found in SkyBiz (warehouse) after a lost answer"
                ours.apply(OutboxEvent.CONFIRM, reason=reason, run_id=self.run_id)
                changed.append(ours)
        self.outbox.save(changed, now=now)
        self.counts.total = len(self.line.queue) + len(plan.of("verify"))

    def _entry(self, item: PlannedCustomer, now: datetime) -> OutboxEntry:
        entry = self.entries.get(item.customer_key)
        payload = canonical_json(item.document)
        if entry is None:
            entry = OutboxEntry(
                customer_key=item.customer_key,
                cus_code=item.cus_code,
                payload_hash=item.payload_hash,
                payload=payload,
                state=OutboxState.PENDING,
                run_id=self.run_id,
                first_seen_at=now,
                updated_at=now,
            )
            self.entries[item.customer_key] = entry
        else:
            entry.cus_code, entry.payload_hash, entry.payload = item.cus_code, item.payload_hash, payload
        return entry

    # -- unknown outcomes ---------------------------------------------------------------------------------

    def settle_unknown(self, plan: PushPlan) -> None:
        """Find out whether documents left ``sent`` by an earlier run exist, before sending any again.

        Besides the plan's ``verify`` customers, any other ``sent`` row (cut off by ``limit``, or whose
        customer left the warehouse) is settled too, so no outcome stays unknown longer than needed.
        """
        items = plan.of("verify")
        planned = {i.customer_key for i in plan.items}
        others = [e for k, e in self.entries.items() if e.state == OutboxState.SENT and k not in planned]
        entries = [self.entries[i.customer_key] for i in items] + others
        if not entries:
            return
        found = self._look_up(entries)
        if found is None:
            self.halted = True  # SkyBiz could not be read: they stay ``sent``, nothing new is sent
            return
        resend: list[OutboxEntry] = []
        for entry in others:  # outside this run's selection: settle the state, count nothing
            if entry.cus_code.upper() in found:
                entry.apply(OutboxEvent.CONFIRM, reason=READ_BACK, run_id=self.run_id)
            else:
                entry.apply(OutboxEvent.NOT_SAVED, run_id=self.run_id)
        for item, entry in zip(items, entries[: len(items)], strict=True):
            if entry.cus_code.upper() in found:
                self._created(entry, READ_BACK)
                self.counts.confirmed += 1
                continue
            # Not created: the current document goes through the same checks as any other.
            problems = validate_documents([(item.customer_key, item.document)], self.rules)[item.customer_key]
            entry.cus_code, entry.payload_hash = item.cus_code, item.payload_hash
            entry.payload = canonical_json(item.document)
            if problems:
                entry.apply(OutboxEvent.REFUSE, reason=reason_text(problems), run_id=self.run_id)
                self.counts.settled += 1
            else:
                entry.apply(OutboxEvent.NOT_SAVED, reason=None, run_id=self.run_id)
                resend.append(entry)
        self.outbox.save(entries)
        self.line.put_first(resend)

    def _look_up(self, entries: Sequence[OutboxEntry]) -> set[str] | None:
        """The CusCodes among ``entries`` that SkyBiz has, read from the days since their last attempt.

        ``None`` when SkyBiz could not be read (transient failures outlasted the client's retries).
        """
        codes = {e.cus_code.upper() for e in entries}
        now_myt = datetime.now(MYT)
        attempts = [e.last_attempt_at for e in entries if e.last_attempt_at is not None]
        since = min(attempts).astimezone(MYT) if attempts else now_myt
        start = since.date() - timedelta(days=self.settings.verify_lookback_days)
        windows = plan_windows("skybiz", start, now_myt.date())
        found: set[str] = set()
        try:
            if len(codes) <= self.settings.verify_filtered_max:
                for code in sorted(codes):
                    for window in windows:
                        self.counts.reads += 1
                        page = self.client.read_window(window, fields=["CusCode"], filters={"CusCode": code})
                        if any(str(row.get("CusCode") or "").strip().upper() == code for row in page.rows):
                            found.add(code)
                            break
            else:
                for window in windows:
                    self.counts.reads += 1
                    page = self.client.read_window(window, fields=["CusCode"])
                    found |= codes & {str(row.get("CusCode") or "").strip().upper() for row in page.rows}
        except TransientApiError:
            return None
        return found

    # -- sending ------------------------------------------------------------------------------------------

    def send(self) -> None:
        """Send the queue in batches until every document is settled or the run has to stop."""
        while self.line and not self.halted:
            batch = self._drop_known_refusals(self.line.next_batch(self.settings.batch_size))
            if batch:
                self._deliver(batch)
            self._report()

    def _drop_known_refusals(self, batch: list[OutboxEntry]) -> list[OutboxEntry]:
        """Take out documents whose currency SkyBiz already said does not exist (earlier in this run)."""
        keep: list[OutboxEntry] = []
        refused: list[OutboxEntry] = []
        for entry in batch:
            currency = str(entry.document.get("CurCode", ""))
            if currency in self.refused_currencies:
                reason = (
                    f"CurCode: Currency code '{currency}' does not exist (SkyBiz said so in request "
                    f"{self.refused_currencies[currency]}; not sent again)"
                )
                entry.apply(OutboxEvent.SKYBIZ_REJECT, reason=reason, run_id=self.run_id)
                refused.append(entry)
            else:
                keep.append(entry)
        if refused:
            self.outbox.save(refused)
            self.counts.settled += len(refused)
        return keep

    def _deliver(self, batch: list[OutboxEntry]) -> None:
        """One request for ``batch``, and whatever its answer makes necessary."""
        tried = self.line.tried
        for entry in batch:
            tried[entry.customer_key] = tried.get(entry.customer_key, 0) + 1
        result = self._request(batch)
        if result is None:  # the answer was lost: look before sending anything again
            self._after_lost_answer(batch)
        elif isinstance(result, RequestRejectedError):
            self._split_or_reject(batch, f"document: SkyBiz refused the request: {result.message}")
        elif result.ok:
            self.counts.saved_batches += 1
            for entry in batch:
                self._answered(entry, result.request_id)
                self._created(entry, None)
            self.outbox.save(batch)
        elif result.inserted:
            # Not all-or-nothing after all? Never documented; treat as an unknown outcome and look.
            self._after_lost_answer(batch)
        else:
            self._after_refusal(batch, result)

    def _request(self, batch: list[OutboxEntry]) -> CreateResult | RequestRejectedError | None:
        """Mark ``sent``, send, and return the answer (``None`` when the outcome is unknown).

        Refusals that prove nothing was saved (429, a connection that never opened) put the batch back to
        ``pending`` and are waited out here, at most ``max_waits`` times per run.
        """
        while True:
            now = datetime.now(UTC)
            self.counts.requests += 1
            for entry in batch:
                entry.apply(OutboxEvent.SEND, run_id=self.run_id)
                entry.attempts, entry.last_attempt_at = entry.attempts + 1, now
                entry.batch_no = self.counts.requests
            self.outbox.save(batch, now=now)  # committed before the request leaves
            try:
                return self.client.create([entry.document for entry in batch])
            except RateLimitedError as exc:
                self._not_saved(batch, exc)
                self._wait(exc, exc.retry_after)
            except CreateOutcomeUnknownError:
                for entry in batch:
                    entry.unanswered_attempts += 1
                self.outbox.save(batch)
                return None
            except TransientApiError as exc:
                if exc.context.get("sent") is False:  # the connection never opened: nothing was sent
                    self._not_saved(batch, exc)
                    self._wait(exc, None)
                    continue
                for entry in batch:
                    entry.unanswered_attempts += 1
                self.outbox.save(batch)
                return None
            except (AuthenticationError, PermissionDeniedError) as exc:
                self._not_saved(batch, exc, reason=f"document: not sent, {exc.message}")
                raise
            except RequestRejectedError as exc:
                self._not_saved(batch, exc)
                return exc
            except PushValidationError as exc:
                self._not_saved(batch, exc)  # the client's own guard refused: nothing left
                raise
            except ApiError:
                # An answer we cannot read ("no envelope"): the batch may have been saved.
                for entry in batch:
                    entry.unanswered_attempts += 1
                self.outbox.save(batch)
                return None

    def _not_saved(self, batch: list[OutboxEntry], exc: SkysmartError, *, reason: str | None = None) -> None:
        for entry in batch:
            entry.apply(OutboxEvent.NOT_SAVED, reason=reason or KEEP)
            if exc.request_id:
                entry.request_ids.append(exc.request_id)
        self.outbox.save(batch)

    def _wait(self, exc: SkysmartError, retry_after: float | None) -> None:
        self.counts.waits += 1
        if self.counts.waits > self.settings.max_waits:
            raise exc
        self.sleep(retry_after if retry_after is not None else self.settings.wait_seconds)

    def _after_lost_answer(self, batch: list[OutboxEntry]) -> None:
        found = self._look_up(batch)
        if found is None:
            self.halted = True  # cannot tell: they stay ``sent``, and nothing more is sent this run
            return
        resend: list[OutboxEntry] = []
        for entry in batch:
            if entry.cus_code.upper() in found:
                self._created(entry, "created; the answer was lost, confirmed by a read")
                self.counts.confirmed += 1
            else:
                entry.apply(OutboxEvent.NOT_SAVED)
                if not self._worn_out(entry):
                    resend.append(entry)
        self.outbox.save(batch)
        self.line.put_first(resend)

    def _after_refusal(self, batch: list[OutboxEntry], result: CreateResult) -> None:
        """Take out exactly the documents SkyBiz named, record why, and put the others back in line."""
        reasons = result.fail_details.reasons_by_code()
        for code in result.failed_codes:
            reasons.setdefault(code, [])
        by_code = {code.strip().upper(): texts for code, texts in reasons.items() if code.strip()}
        named: list[OutboxEntry] = []
        rest: list[OutboxEntry] = []
        later: list[OutboxEntry] = []
        for entry in batch:
            self._answered(entry, result.request_id)
            texts = by_code.get(entry.cus_code.upper())
            if texts is None:
                entry.apply(OutboxEvent.NOT_SAVED)
                rest.append(entry)
                continue
            named.append(entry)
            if texts and all(SAME_BATCH in t for t in texts) and not self._worn_out(entry):
                # Our batches never hold a code twice (validated), so this is about the batch, not the
                # document: it goes again, in a later request.
                entry.apply(OutboxEvent.NOT_SAVED)
                later.append(entry)
                continue
            self._judge(entry, texts, result.request_id)
        if not named:
            self.outbox.save(batch)
            why = f"document: SkyBiz refused the batch without naming it (request {result.request_id})"
            self._split_or_reject(batch, why)
            return
        self.outbox.save(batch)
        self.line.put_first(rest)
        self.line.queue.extend(later)

    def _judge(self, entry: OutboxEntry, texts: Sequence[str], request_id: str) -> None:
        """The outcome of one document SkyBiz named in a refused batch."""
        if any(ALREADY_EXISTS in t for t in texts):
            if entry.unanswered_attempts > 0:
                # An earlier request of ours, whose answer was lost, created it.
                self._created(
                    entry,
                    f"created by an earlier request whose answer was lost; SkyBiz says "
                    f"'{ALREADY_EXISTS}' (request {request_id})",
                )
                self.counts.confirmed += 1
                return
            conflict = PushConflictError(
                f"needs review — CusCode: SkyBiz already has {entry.cus_code} but skysmart never sent it "
                f"(request {request_id})",
                source="skybiz",
                record_key=entry.customer_key,
                field="CusCode",
            )
            entry.apply(OutboxEvent.HOLD, reason=conflict.message, run_id=self.run_id)
            self.counts.settled += 1
            return
        reason = "; ".join(_server_reason(t, request_id) for t in texts) or (
            f"document: SkyBiz listed it as failed without a reason (request {request_id})"
        )
        entry.apply(OutboxEvent.SKYBIZ_REJECT, reason=reason, run_id=self.run_id)
        for text in texts:
            if match := _CURRENCY.search(text):
                self.refused_currencies.setdefault(match["code"], request_id)
        self.counts.settled += 1

    def _split_or_reject(self, batch: list[OutboxEntry], reason: str) -> None:
        """Bisect a batch refused without naming anyone; a lone document is the culprit.

        The batch is ``pending`` already: SkyBiz saved nothing of it.
        """
        if len(batch) == 1:
            batch[0].apply(OutboxEvent.SKYBIZ_REJECT, reason=reason, run_id=self.run_id)
            self.counts.settled += 1
            self.outbox.save(batch)
            return
        self.outbox.save(batch)
        middle = len(batch) // 2
        self.line.halves += [batch[middle:], batch[:middle]]

    def _worn_out(self, entry: OutboxEntry) -> bool:
        return self.line.tried.get(entry.customer_key, 0) >= self.settings.max_attempts

    def _answered(self, entry: OutboxEntry, request_id: str) -> None:
        entry.request_ids.append(request_id)

    def _created(self, entry: OutboxEntry, reason: str | None) -> None:
        entry.apply(OutboxEvent.CONFIRM, reason=reason, run_id=self.run_id)
        self.counts.settled += 1

    def _report(self) -> None:
        if self.progress is None:
            return
        states = [e.state for e in self.entries.values() if e.run_id == self.run_id]
        self.progress(
            PushProgress(
                settled=self.counts.settled,
                total=self.counts.total,
                requests=self.counts.requests,
                created=states.count(OutboxState.CREATED),
                rejected=states.count(OutboxState.REJECTED),
            )
        )

    # -- the result ---------------------------------------------------------------------------------------

    def result(self, plan: PushPlan) -> PushResult:
        """Count where every selected customer ended up."""
        tally = {"invalid": 0, "created": 0, "rejected": 0, "needs_review": 0, "unresolved": 0}
        for item in plan.items:
            entry = self.entries.get(item.customer_key)
            state = entry.state if entry is not None else OutboxState.PENDING
            if item.action == "invalid":
                tally["invalid"] += 1
            elif state == OutboxState.CREATED:
                tally["created"] += 1
            elif state in (OutboxState.REJECTED, OutboxState.NEEDS_REVIEW):
                tally[state.value] += 1
            else:
                tally["unresolved"] += 1
        return PushResult(
            selected=len(plan.items),
            valid=len(plan.items) - tally["invalid"],
            invalid=tally["invalid"],
            already_exists=len(plan.counterparts),
            created=tally["created"],
            rejected=tally["rejected"],
            needs_review=tally["needs_review"],
            requests=self.counts.requests,
            batches=self.counts.saved_batches,
            unresolved=tally["unresolved"],
            confirmed=self.counts.confirmed,
            to_create=self.counts.total,
            reads=self.counts.reads,
            run_id=self.run_id,
            coverage_problem=plan.coverage_problem,
        )


def _server_reason(text: str, request_id: str) -> str:
    """A SkyBiz failure text as an outbox reason that starts with the field it is about."""
    if match := _MISSING.search(text):
        fields = match["fields"].strip()
    elif _CURRENCY.search(text):
        fields = "CurCode"
    elif "CusCode" in text:
        fields = "CusCode"
    else:
        fields = "document"
    return f"{fields}: SkyBiz: {text} (request {request_id})"
