"""Delivering the outbox: notifiers, retries with backoff, dead letters, business hours.

The escalation engine writes each notification to the ``outbox`` role in the unit of work
that fires it. A :class:`Dispatcher` drains the outbox: it claims a due message for one
attempt (a lease: a dispatcher that dies mid-attempt leaves a message that is due again when
the lease ends), hands it to a :class:`Notifier`, and marks it delivered, or schedules a retry
with exponential :class:`Backoff`, or moves it to the dead letters after ``max_attempts``.
Delivery is at least once: a host drops duplicates by the message's idempotency key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable

import attrs

from csmcore._time import MAX_INSTANT, require_aware, shifted
from csmcore.calendars import BusinessCalendar
from csmcore.clock import Clock
from csmcore.errors import CsmError, NoBusinessTimeError, StorageError, ValidationError
from csmcore.escalation import NotificationRequest
from csmcore.sla import SlaBook
from csmcore.storage import (
    OutboxMessage,
    OutboxPaging,
    OutboxRepository,
    OutboxState,
    role_of,
)

__all__ = [
    "Backoff",
    "DispatchRun",
    "Dispatcher",
    "Notifier",
    "PermanentDeliveryError",
]

_MAX_ERROR = 2000
_LAST_INSTANT = MAX_INSTANT - timedelta(microseconds=1)
_UTC = timezone.utc
_HORIZON = timedelta(days=BusinessCalendar.search_horizon_days)


def _later(at: datetime, delta: timedelta) -> datetime:
    """``at + delta`` of elapsed time (through UTC, not on ``at``'s wall clock: a lease or a
    retry taken across a DST change lasts what it says), or the last supported instant when
    that is past it."""
    return shifted(at, delta) if delta < _LAST_INSTANT - at else _LAST_INSTANT


class PermanentDeliveryError(CsmError, RuntimeError):
    """A notifier's refusal that no retry can cure (an unknown template, an address that is
    not one): the dispatcher moves the message to the dead letters at once."""


@runtime_checkable
class Notifier(Protocol):
    """Delivers one notification, or raises.

    ``key`` is the message's stable idempotency key (the same on every attempt and from every
    dispatcher): pass it on (a header, a field) so the receiving end can drop duplicates, since
    delivery is at least once. ``attempt`` counts from 1. Any ``Exception`` is a failed
    attempt that will be retried; :class:`PermanentDeliveryError` is one that will not.
    """

    def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
        """Deliver ``request``; return normally only when it was accepted."""
        ...


def _positive_delta(name: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, timedelta) or value <= timedelta(0):
            raise ValidationError(f"{name}={value!r} is not a positive datetime.timedelta")

    return check


def _factor(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise ValidationError(f"factor={value!r} is not a number >= 1")


def _jitter(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationError(f"jitter={value!r} is not a number from 0 to 1")


@attrs.frozen(kw_only=True)
class Backoff:
    """How long to wait before retry ``n`` (after the ``n``-th failed attempt).

    The plain delay is ``base * factor ** (n - 1)``, capped at ``cap``. ``jitter`` (0 to 1)
    spreads a delay into the step up to the next plain delay: retry ``n`` waits
    ``d(n) + jitter * u * (d(n + 1) - d(n))`` where ``u`` in [0, 1) is derived from the
    message key, the attempt and ``seed`` (a hash, no hidden random state: the same message
    gets the same delays in every process). So the delays of one message never decrease and
    never exceed ``cap``; messages that failed together spread apart while the delays grow
    and keep their spread once capped.

    >>> from datetime import timedelta
    >>> backoff = Backoff(base=timedelta(seconds=30), factor=2, cap=timedelta(minutes=5))
    >>> [backoff.delay(n, "k").total_seconds() for n in range(1, 7)]
    [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    >>> jittered = Backoff(base=timedelta(seconds=30), factor=2, jitter=0.5)
    >>> timedelta(seconds=30) <= jittered.delay(1, "k") < timedelta(seconds=60)
    True
    """

    base: timedelta = attrs.field(default=timedelta(seconds=30), validator=_positive_delta("base"))
    factor: float = attrs.field(default=2.0, validator=_factor)
    cap: timedelta = attrs.field(default=timedelta(hours=1), validator=_positive_delta("cap"))
    jitter: float = attrs.field(default=0.0, validator=_jitter)
    seed: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))

    def __attrs_post_init__(self) -> None:
        if self.cap < self.base:
            raise ValidationError(f"cap={self.cap!r} is below base={self.base!r}")

    def plain(self, attempt: int) -> timedelta:
        """The delay after failed attempt ``attempt`` (from 1) without jitter."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValidationError(f"attempt={attempt!r} is not a whole number >= 1")
        cap_us = _us(self.cap)
        delay_us = float(_us(self.base))
        for _ in range(attempt - 1):
            delay_us *= self.factor
            if delay_us >= cap_us:
                return self.cap
        return timedelta(microseconds=min(cap_us, round(delay_us)))

    def delay(self, attempt: int, key: str) -> timedelta:
        """The delay after failed attempt ``attempt`` of the message ``key``, with jitter."""
        low = self.plain(attempt)
        if not self.jitter:
            return low
        step = _us(self.plain(attempt + 1)) - _us(low)
        digest = hashlib.blake2b(f"{self.seed}\0{key}\0{attempt}".encode(), digest_size=8)
        u = int.from_bytes(digest.digest(), "big") / 2.0**64
        return low + timedelta(microseconds=int(self.jitter * u * step))


def _us(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


@attrs.frozen(kw_only=True)
class DispatchRun:
    """What one :meth:`Dispatcher.run` did, by message key, in the order it happened.

    ``retried``: failed attempts with a retry scheduled; ``dead``: moved to the dead letters;
    ``held``: due but held (outside the calendar's open time, or before ``not_before``);
    ``lost``: claimed first by another dispatcher, or its lease ended before the attempt
    finished (the other dispatcher owns the outcome).
    """

    delivered: tuple[str, ...] = ()
    retried: tuple[str, ...] = ()
    dead: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()


CalendarSource = SlaBook | BusinessCalendar | Callable[[str | None], BusinessCalendar]


class Dispatcher:
    """Deliver the messages of a store's ``outbox`` role, at least once.

    ``notifiers`` maps a channel (``NotificationRequest.channel``) to its :class:`Notifier`;
    a single notifier serves every channel. A message on a channel with no notifier fails its
    attempt (and so ends in the dead letters, where it can be seen and re-queued).

    Each message gets at most ``max_attempts`` attempts: the first, then a retry after each
    failure at ``now + backoff.delay(n, key)``; after the ``max_attempts``-th failure it is
    DEAD. An attempt is claimed with a lease of ``lease`` (make it longer than a notifier
    can take, the SMTP timeout for instance): while it runs no other dispatcher takes the
    message, and if this one dies the message is due again when the lease ends. Such an
    attempt counts; when it was the last one, the message still gets one more attempt (it may
    or may not have been delivered), whose failure makes it DEAD.

    A request with ``business_hours=True`` is delivered only while its calendar is open:
    ``calendars`` gives the calendar of a name (an :class:`~csmcore.sla.SlaBook`, whose
    ``calendar_named`` is used, one :class:`~csmcore.calendars.BusinessCalendar` for every
    name, or a function of the name). A due message found outside open time is left alone
    (held, no attempt spent) until the calendar opens; its retries and leases end at the
    calendar's next open time. Without ``calendars`` (or with an unknown calendar name) such
    a message is dead at its first attempt, with an error naming the calendar. No message
    is delivered before its request's ``not_before``.

    ``clock`` gives every instant (never ``datetime.now()``).

    >>> from datetime import datetime, timezone
    >>> from csmcore.clock import FixedClock
    >>> from csmcore.escalation import NotificationRequest
    >>> from csmcore.storage import OutboxMessage, open_store
    >>> at = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
    >>> store = open_store("memory://")
    >>> request = NotificationRequest(channel="email", recipient="lead@example.com",
    ...     template="warn", data={}, not_before=at, idempotency_key="k/0", ticket_id="T-1")
    >>> store.outbox.put([OutboxMessage.new(request, created_at=at)])
    1
    >>> sent = []
    >>> class Printer:
    ...     def deliver(self, request, *, key, attempt):
    ...         sent.append((request.recipient, key, attempt))
    >>> dispatcher = Dispatcher(store, Printer(), clock=FixedClock(at))
    >>> dispatcher.run().delivered
    ('k/0',)
    >>> sent
    [('lead@example.com', 'k/0', 1)]
    >>> dispatcher.run().delivered  # delivered messages are not sent again
    ()
    """

    def __init__(
        self,
        store: Any,
        notifiers: Notifier | Mapping[str, Notifier],
        *,
        clock: Clock,
        backoff: Backoff | None = None,
        max_attempts: int = 8,
        lease: timedelta = timedelta(minutes=5),
        calendars: CalendarSource | None = None,
        batch_size: int = 100,
    ) -> None:
        self._outbox: OutboxRepository = (
            store if isinstance(store, OutboxRepository) else role_of(store, "outbox")
        )
        # a cursor through the due messages, when the role offers one (optional)
        self._paging: OutboxPaging | None = (
            self._outbox if isinstance(self._outbox, OutboxPaging) else None
        )
        if isinstance(notifiers, Mapping):
            for channel, notifier in notifiers.items():
                _check_notifier(notifier, f"notifiers[{channel!r}]")
            self._notifiers: Mapping[str, Notifier] | Notifier = dict(notifiers)
        else:
            self._notifiers = _check_notifier(notifiers, "notifiers")
        if not isinstance(clock, Clock):
            raise ValidationError(f"clock={clock!r} has no now(); pass a csmcore.clock.Clock")
        self._clock = clock
        if backoff is None:
            backoff = Backoff()
        if not isinstance(backoff, Backoff):
            raise ValidationError(f"backoff={backoff!r} is not a Backoff")
        self._backoff = backoff
        for name, value in (("max_attempts", max_attempts), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name}={value!r} is not a whole number >= 1")
        self._max_attempts = max_attempts
        self._batch_size = batch_size
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ValidationError(f"lease={lease!r} is not a positive datetime.timedelta")
        self._lease = lease
        if calendars is not None and not (
            isinstance(calendars, SlaBook | BusinessCalendar) or callable(calendars)
        ):
            raise ValidationError(
                f"calendars={calendars!r} is not a SlaBook, a BusinessCalendar or a function "
                "of a calendar name"
            )
        self._calendars = calendars

    @property
    def max_attempts(self) -> int:
        """The attempts a message gets before it is DEAD."""
        return self._max_attempts

    @property
    def backoff(self) -> Backoff:
        """The retry delays."""
        return self._backoff

    # --- running -------------------------------------------------------------------------

    def run(self, *, limit: int | None = None) -> DispatchRun:
        """Attempt every message due now (at most ``limit`` attempts), oldest first.

        Messages held to business hours are skipped without spending an attempt; they do not
        hide the messages due after them.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValidationError(f"limit={limit!r} is not a whole number >= 0 or None")
        out: dict[str, list[str]] = {
            "delivered": [],
            "retried": [],
            "dead": [],
            "held": [],
            "lost": [],
        }
        attempted = 0
        for message in self._pending(self._now):
            if limit is not None and attempted >= limit:
                break
            outcome = self._attempt(message)
            out[outcome].append(message.key)
            if outcome != "held":
                attempted += 1
        return DispatchRun(**{name: tuple(keys) for name, keys in out.items()})

    def next_due(self) -> datetime | None:
        """The earliest instant (UTC) at which :meth:`run` will attempt a message: now when one
        can be attempted now, else the first ``next_attempt_at`` (never before the request's
        ``not_before``; for a message held to business hours, the next open time of its
        calendar from then, or the end of the calendar's search horizon when it opens nowhere
        before: ask again then); never past the last supported instant; None when no message
        is PENDING. A host schedules one wake-up at this instant instead of polling (the
        engine's ``next_due`` is the other one). A message written or failed after the call
        can make it earlier: ask again after each engine run and each dispatcher run
        (docs/escalation.md, "Delivering notifications", has an example).
        """
        now = self._now()
        best: datetime | None = None
        for message in self._pending(lambda: _LAST_INSTANT):
            if best is not None and message.next_attempt_at >= best:
                break  # ordered by next_attempt_at: none after can come earlier
            # not_before in UTC: it may be in the zone of the engine's `now`, and two such
            # datetimes compare by wall reading (the second 02:20 of a fall-back night would
            # come before the first 02:45), so `at < best` would pick the later instant
            not_before = message.request.not_before.astimezone(_UTC)
            at = max(message.next_attempt_at, not_before, now)
            if message.request.business_hours:
                try:
                    calendar = self._calendar(message.request.calendar)
                except Exception:  # attempted (and dead-lettered) when due, at ``at``
                    calendar = None
                at = self._hold(calendar, at, unopened=_HORIZON)
            if best is None or at < best:
                best = at
            if best == now:
                break
        # in UTC, as the engine's next_due(): a datetime of a zone's repeated hour (a clock in
        # Berlin at the second 02:10) never compares == to another zone's (PEP 495)
        return None if best is None else best.astimezone(_UTC)

    def _pending(self, at: Callable[[], datetime]) -> Iterator[OutboxMessage]:
        """The PENDING messages due by ``at()`` (read again for each page), oldest
        ``next_attempt_at`` first (then by key), each once. Held messages stay due: they must
        not hide the messages after them. With an outbox that offers
        :class:`~csmcore.storage.OutboxPaging`, each page starts after the last message read
        (each due message is read about once); otherwise each page asks ``due`` for one batch
        more than those already given (O(H^2 / batch_size) rows for H held messages). A
        message attempted during the run may be due again later in the order (its retry):
        it is not given twice. A message written (or moved) meanwhile behind the last one read
        (an engine's, due at its firing instant) is left to the next run, whose first page
        starts again at the head of the queue (next_due() says now)."""
        seen: set[str] = set()
        paging = self._paging
        after: tuple[datetime, str] | None = None
        while True:
            if paging is not None and after is not None:  # the pages after the first
                requested = self._batch_size
                batch = paging.due_after(at(), after=after, limit=requested)
            else:  # the first page; without a cursor, the messages given and one batch more
                requested = (0 if paging is not None else len(seen)) + self._batch_size
                batch = self._outbox.due(at(), limit=requested)
            for message in batch:
                if message.key not in seen:
                    seen.add(message.key)
                    yield message
            if len(batch) < requested:
                return  # that was every message due: nothing more to page through
            last = (batch[-1].next_attempt_at, batch[-1].key)
            if paging is not None and after is not None and not last > after:
                raise StorageError(
                    f"{type(paging).__name__}.due_after(after={after!r}) gave {last!r} last, "
                    "which is not after the cursor; see csmcore.storage.OutboxPaging"
                )  # a broken role would page forever
            after = last

    def attempt(self, key: str) -> str:
        """Attempt the message ``key`` now if it is due: the outcome, one of ``"delivered"``,
        ``"retried"``, ``"dead"``, ``"held"``, ``"lost"``, or ``"not_due"``."""
        message = self._outbox.get(key)
        if message.state is not OutboxState.PENDING or message.next_attempt_at > self._now():
            return "not_due"
        return self._attempt(message)

    def _attempt(self, message: OutboxMessage) -> str:
        now = self._now()
        request = message.request
        calendar: BusinessCalendar | None = None
        calendar_error: str | None = None
        if request.business_hours:
            try:
                calendar = self._calendar(request.calendar)
            except Exception as err:
                calendar_error = _describe(err)
        if now < request.not_before or (calendar is not None and not calendar.is_open(now)):
            return "held"
        until = self._hold(calendar, _later(now, self._lease))
        attempt = message.attempts + 1
        if not self._outbox.claim(message.key, attempts=message.attempts, until=until):
            return "lost"
        permanent = False
        try:
            if calendar_error is not None:
                raise PermanentDeliveryError(calendar_error)
            notifier = self._notifier(request.channel)
            notifier.deliver(request, key=message.key, attempt=attempt)
        except Exception as err:
            error = _describe(err)
            permanent = isinstance(err, PermanentDeliveryError)
        else:
            self._outbox.delivered(message.key, at=self._now())
            return "delivered"
        return self._failed(message.key, attempt, error, calendar, permanent=permanent)

    def _failed(
        self,
        key: str,
        attempt: int,
        error: str,
        calendar: BusinessCalendar | None,
        *,
        permanent: bool,
    ) -> str:
        now = self._now()
        current = self._outbox.get(key)
        if current.state is not OutboxState.PENDING or current.attempts != attempt:
            return "lost"  # the lease ended and another attempt took over: its outcome counts
        if permanent or attempt >= self._max_attempts:
            self._outbox.failed(key, at=now, error=error, retry_at=None)
            return "dead"
        retry_at = self._hold(calendar, _later(now, self._backoff.delay(attempt, key)))
        self._outbox.failed(key, at=now, error=error, retry_at=retry_at)
        return "retried"

    # --- dead letters ----------------------------------------------------------------------

    def dead_letters(self, *, limit: int | None = None) -> list[OutboxMessage]:
        """The DEAD messages, oldest first, with ``last_error`` and ``attempts``."""
        return self._outbox.list(state=OutboxState.DEAD, limit=limit)

    def requeue(self, key: str, *, at: datetime | None = None) -> OutboxMessage:
        """Put the DEAD message ``key`` back in the queue, due at ``at`` (None: now), never
        before its ``not_before``; a message held to business hours is then attempted at its
        calendar's next open time from that instant, as :meth:`run` holds any (the stored
        ``next_attempt_at`` is the instant given). It gets one more
        attempt; failing that, it is DEAD again. Raises :class:`~csmcore.errors.NotFound`
        for an unknown key and :class:`~csmcore.errors.ValidationError` for a message that is
        not DEAD."""
        if at is not None:
            require_aware(at, "at")
        message = self._outbox.get(key)
        if message.state is not OutboxState.DEAD:
            raise ValidationError(
                f"message {key!r} is {message.state.value}; only a dead message is re-queued"
            )
        due = max(self._now() if at is None else at.astimezone(_UTC), message.request.not_before)
        self._outbox.failed(
            key,
            at=self._now(),
            error=message.last_error or "re-queued",
            retry_at=due,
        )
        return self._outbox.get(key)

    # --- helpers ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        # in UTC: a request's not_before may be in the zone of the engine's `now`, and two
        # datetimes of one zone compare by wall reading, fold ignored (the second 02:20 of a
        # fall-back night would read as before the first 02:45)
        return require_aware(self._clock.now(), "clock.now()").astimezone(_UTC)

    def _notifier(self, channel: str) -> Notifier:
        if isinstance(self._notifiers, Mapping):
            found = self._notifiers.get(channel)
            if found is None:
                raise LookupError(
                    f"no notifier for channel {channel!r}; configured: {sorted(self._notifiers)}"
                )
            return found
        return self._notifiers

    def _calendar(self, name: str | None) -> BusinessCalendar:
        source = self._calendars
        if source is None:
            raise ValidationError(
                f"the request asks for business hours (calendar {name!r}) but the dispatcher "
                "was given no calendars="
            )
        if isinstance(source, SlaBook):
            return source.calendar_named(name)
        if isinstance(source, BusinessCalendar):
            return source
        found = source(name)
        if not isinstance(found, BusinessCalendar):
            raise ValidationError(f"calendars({name!r}) gave {found!r}, not a BusinessCalendar")
        return found

    @staticmethod
    def _hold(
        calendar: BusinessCalendar | None, at: datetime, *, unopened: timedelta = timedelta(0)
    ) -> datetime:
        """``at`` held to ``calendar``'s next open time, never past the last supported
        instant. When nothing opens within the calendar's search horizon, ``at`` plus
        ``unopened``: a lease or a retry then ends as without a calendar (``run`` holds the
        message while the calendar is closed), and ``next_due`` says to ask again where the
        search ended, instead of raising NoBusinessTimeError into the host's loop."""
        if calendar is not None:
            try:
                at = calendar.next_open(at)
            except NoBusinessTimeError:
                at = _later(at, unopened)
        return min(at, _LAST_INSTANT)


def _check_notifier(notifier: object, name: str) -> Notifier:
    if not isinstance(notifier, Notifier):
        raise ValidationError(
            f"{name}={notifier!r} has no deliver(request, *, key, attempt); wrap a function "
            "in CallableNotifier"
        )
    return notifier


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."
