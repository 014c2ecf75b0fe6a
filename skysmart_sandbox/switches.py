"""Run-time switches of a sandbox emulator: latency, faults, rate limits, permissions, live mutation.

One mutable object per emulator; tests flip attributes while the server runs. Random faults are drawn from
a seeded generator so a run is repeatable; ``fail_next`` queues exact faults for deterministic tests.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Literal

Fault = Literal["500", "429", "drop", "truncate", "non_json", "slow", "drop_after_commit"]
FAULTS: Final[tuple[str, ...]] = ("500", "429", "drop", "truncate", "non_json", "slow", "drop_after_commit")
# Ways a served record can be corrupted on the wire (see skysmart_sandbox.faults.corrupt_record).
CORRUPTIONS: Final[tuple[str, ...]] = (
    "wrong_type",
    "missing_key",
    "null",
    "long_string",
    "control_chars",
    "bad_date",
)


@dataclass
class Switches:
    """What an emulator does besides answering correctly.

    Attributes:
        latency_ms: added to every request before it is answered.
        fault_rates: probability per request of each fault (``"500"``, ``"429"``, ``"drop"`` — connection
            closed without an answer, ``"truncate"`` — body cut short, ``"non_json"`` — an HTML error page,
            ``"slow"`` — answered after ``slow_seconds``).
        fail_next: faults to inject into the next requests, one each, before any random ones. A
            ``"drop_after_commit"`` lets a create commit and then drops the connection (a lost response).
        retry_after_seconds: the ``Retry-After`` a 429 carries.
        rate_limit_per_key_per_min / rate_limit_per_ip_per_min: sliding-minute limits; ``None`` means none.
        mutate_every_n_requests: after every n-th request, edit ``mutate_count`` random customers (new
            modification time = now, stamp + 1, a field changed) — a live-changing dataset; 0 turns it off.
        corrupt_rate: share of customer records served corrupted (0..1). Which records are hit, and how,
            is a pure function of ``seed`` and the record's id, so every read of a record is corrupted the
            same way — what a vendor's bad record looks like.
        corrupt_kinds: the corruptions drawn from (:data:`CORRUPTIONS`).
        corrupted: the truth, filled as records are served: record id → ``(kind, field)``.
        seed: seeds fault, mutation and corruption draws.
    """

    latency_ms: float = 0.0
    fault_rates: dict[str, float] = field(default_factory=dict)
    fail_next: deque[str] = field(default_factory=deque)
    slow_seconds: float = 5.0
    retry_after_seconds: int = 1
    rate_limit_per_key_per_min: int | None = None
    rate_limit_per_ip_per_min: int | None = None
    mutate_every_n_requests: int = 0
    mutate_count: int = 1
    corrupt_rate: float = 0.0
    corrupt_kinds: tuple[str, ...] = CORRUPTIONS
    corrupted: dict[str, tuple[str, str]] = field(default_factory=dict)
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        unknown = set(self.fault_rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; choose from {', '.join(FAULTS)}")
        if not 0.0 <= self.corrupt_rate <= 1.0:
            raise ValueError("corrupt_rate must lie in 0..1")
        bad_kinds = set(self.corrupt_kinds) - set(CORRUPTIONS)
        if bad_kinds or not self.corrupt_kinds:
            raise ValueError(f"corrupt_kinds must be among {', '.join(CORRUPTIONS)}")
        self.corrupt_kinds = tuple(self.corrupt_kinds)
        self._rng = random.Random(self.seed)

    def inject(self, *faults: str) -> None:
        """Queue exact faults for the next requests (one per request)."""
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        with self._lock:
            self.fail_next.extend(faults)

    def draw_fault(self) -> str | None:
        """The fault for this request, if any: queued ones first, then random ones by rate."""
        with self._lock:
            if self.fail_next:
                return self.fail_next.popleft()
            for fault, rate in self.fault_rates.items():
                if rate > 0 and self._rng.random() < rate:
                    return fault
        return None

    def reset(self) -> None:
        """Back to a well-behaved server."""
        with self._lock:
            self.latency_ms = 0.0
            self.fault_rates = {}
            self.fail_next.clear()
            self.rate_limit_per_key_per_min = None
            self.rate_limit_per_ip_per_min = None
            self.mutate_every_n_requests = 0
            self.corrupt_rate = 0.0

    def record_corruption(self, record_id: str, kind: str, field_name: str) -> None:
        """Note that the record ``record_id`` was served with ``kind`` applied to ``field_name``."""
        with self._lock:
            self.corrupted[record_id] = (kind, field_name)
