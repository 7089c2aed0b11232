"""The optional escalation roles: :class:`FiringTests` (``firings``) and :class:`OutboxTests`
(``outbox``). A store that offers a role adds its group; the tests of a role the store does
not offer FAIL (a store lists its roles in ``roles``; see :mod:`csmcore.storage.roles`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, ClassVar

import pytest

from csmcore.errors import NaiveDatetimeError, NotFound, ValidationError
from csmcore.escalation import Firing, NotificationRequest
from csmcore.storage import open_store
from csmcore.storage.protocols import (
    FiringRepository,
    OutboxMessage,
    OutboxPaging,
    OutboxRepository,
    OutboxState,
    Store,
    TicketPlan,
)
from csmcore.storage.roles import offered_roles, role_of
from csmcore.testing.builders import T0, make_comment, make_ticket
from csmcore.testing.storage_suite._base import StoreFixtures, check_ended_units_refuse

_H = timedelta(hours=1)
_US = timedelta(microseconds=1)
_ZONES = {
    "UTC": timezone.utc,
    "UTC+09:00": timezone(timedelta(hours=9)),
    "UTC-05:00": timezone(timedelta(hours=-5)),
}


def _firing(ticket_id: str = "T-1", level: int = 0, cycle: int = 1, hours: int = 1) -> Firing:
    return Firing(
        rule="r",
        rule_version=1,
        level=level,
        ticket_id=ticket_id,
        target="first_reply" if level < 5 else None,
        cycle=cycle,
        at=T0 + hours * _H,
    )


def _message(key: str, hours: int = 0, *, text: str = "warn") -> OutboxMessage:
    request = NotificationRequest(
        channel="email",
        recipient="lead@example.com",
        template=text,
        data={"ticket_id": "T-1", "n": 1, "ok": True, "none": None},
        not_before=T0 + hours * _H,
        idempotency_key=key,
        ticket_id="T-1",
    )
    return OutboxMessage.new(request, created_at=T0 + hours * _H)


def _role(store: Any, name: str) -> Any:
    if hasattr(store, "unit_of_work"):
        where = "store's roles attribute"
        what = type(store).__name__
    else:  # the roles of a unit of work: the engine writes this role in its units of work
        where = "unit of work's roles attribute (and give the unit of work the role too)"
        what = f"{type(store).__name__} (a unit of work)"
    assert name in offered_roles(store), (
        f"{what} runs the {name} group but does not offer the {name!r} role; list it in the "
        + where
    )
    return role_of(store, name)


class _Racing(StoreFixtures):
    """Threads racing on one key of an optional escalation role."""

    escalation_racers: ClassVar[int] = 4
    """Threads racing on the same firing key, message or schedule (each on its own handle
    when the store can reopen its URL, else all on the store)."""
    escalation_race_rounds: ClassVar[int] = 20
    """Rounds of each such race, each on a new key."""

    @contextmanager
    def _racing_handles(self, store: Store) -> Iterator[list[Store]]:
        if "reopen" in self.opt_out:
            yield [store] * self.escalation_racers
            return
        handles = [open_store(store.url) for _ in range(self.escalation_racers)]
        try:
            yield handles
        finally:
            for handle in handles:
                handle.close()


def _race(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads started together; their results in order."""
    barrier = threading.Barrier(len(calls), timeout=30)
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = calls[n]()
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [], f"racing calls raised {errors!r}"
    return results


def _record_on(handle: Store, firing: Firing) -> bool:
    return bool(_role(handle, "firings").record(firing, recorded_at=T0))


def _plan_on(handle: Store, ticket_id: str, version: int) -> None:
    _role(handle, "firings").plan(ticket_id, version=version, next_due=T0 + version * _H)


def _claim_on(handle: Store, key: str) -> bool:
    return bool(_role(handle, "outbox").claim(key, attempts=0, until=T0 + _H))


class FiringTests(_Racing):
    """The ``firings`` role: each key recorded once, also across a unit of work's rollback and
    between handles; the schedule (``plan``, ``due``, ``next_due``)."""

    def test_firings_satisfy_the_protocol(self, store: Store) -> None:
        assert isinstance(_role(store, "firings"), FiringRepository)

    def test_a_key_is_recorded_once(self, store: Store) -> None:
        firings = _role(store, "firings")
        first = _firing()
        assert firings.record(first, recorded_at=T0 + 2 * _H) is True
        again = Firing(**{**_as_dict(first), "at": T0 + 5 * _H})  # same key, another instant
        assert firings.record(again, recorded_at=T0 + 6 * _H) is False
        assert firings.keys("T-1") == {first.key}
        (record,) = firings.list()
        assert record.firing == first
        assert record.recorded_at == T0 + 2 * _H
        assert record.firing.at.utcoffset() == timedelta(0)

    def test_keys_and_lists_by_ticket_in_instant_order(self, store: Store) -> None:
        firings = _role(store, "firings")
        made = [
            _firing("T-1", level=0, hours=3),
            _firing("T-2", level=0, hours=2),
            _firing("T-1", level=1, hours=1),  # its key sorts after made[0]'s, its instant first
            _firing("T-1", level=5, cycle=2, hours=4),
            _firing("T-1", level=10, hours=4),  # same instant: by key_text, '[..,10,..' first
        ]
        for firing in made:
            assert firings.record(firing, recorded_at=T0 + 9 * _H)
        assert firings.keys("T-1") == {made[0].key, made[2].key, made[3].key, made[4].key}
        assert firings.keys("T-3") == frozenset()
        listed = [r.firing for r in firings.list()]
        assert listed == [made[2], made[1], made[0], made[4], made[3]], (
            "list() orders records by the firing instant (Firing.at), then by Firing.key_text "
            f"(the key as compact JSON text, compared as a string); got {listed}"
        )
        assert [r.firing for r in firings.list(ticket_id="T-1", limit=2)] == [made[2], made[0]]
        assert firings.list(limit=0) == []

    def test_a_rolled_back_unit_of_work_records_nothing(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))

        class Boom(Exception):
            pass

        def write_then_fail() -> None:
            with store.unit_of_work() as uow:
                assert _role(uow, "firings").record(_firing(), recorded_at=T0)
                _role(uow, "firings").plan("T-1", version=2, next_due=T0)
                uow.tickets.append("T-1", [make_comment(T0, "x")], expected_version=1)
                raise Boom

        with pytest.raises(Boom):
            write_then_fail()
        firings = _role(store, "firings")
        assert firings.keys("T-1") == frozenset()
        assert firings.planned("T-1") is None
        assert firings.record(_firing(), recorded_at=T0) is True

    def test_a_unit_of_work_commits_records_plans_and_events_together(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))
        with store.unit_of_work() as uow:
            assert _role(uow, "firings").record(_firing(), recorded_at=T0)
            assert _role(uow, "firings").keys("T-1") == {_firing().key}  # reads its own writes
            _role(uow, "firings").plan("T-1", version=2, next_due=None)
            uow.tickets.append("T-1", [make_comment(T0, "x")], expected_version=1)
        assert _role(store, "firings").keys("T-1") == {_firing().key}
        assert _role(store, "firings").planned("T-1") == TicketPlan(
            ticket_id="T-1", version=2, next_due=None
        )
        assert store.tickets.get("T-1").version == 2

    def test_a_unit_of_work_reads_its_own_records_and_plans(self, store: Store) -> None:
        """Inside a unit of work every read of the role sees the unit's own writes, as its
        ``tickets`` do: ``keys``, ``list``, ``planned``, ``due`` and ``next_due``."""
        firings = _role(store, "firings")
        firings.plan("T-1", version=1, next_due=T0 + 5 * _H)
        with store.unit_of_work() as uow:
            mine = _role(uow, "firings")
            assert mine.record(_firing("T-2"), recorded_at=T0)
            mine.plan("T-2", version=1, next_due=T0 + _H)
            mine.plan("T-1", version=2, next_due=T0 + 2 * _H)
            seen = {
                "keys": mine.keys("T-2"),
                "list": [r.firing for r in mine.list()],
                "planned": mine.planned("T-2"),
                "due": [(p.ticket_id, p.version) for p in mine.due(T0 + 9 * _H)],
                "next_due": mine.next_due(),
            }
        assert seen == {
            "keys": {_firing("T-2").key},
            "list": [_firing("T-2")],
            "planned": TicketPlan(ticket_id="T-2", version=1, next_due=T0 + _H),
            "due": [("T-2", 1), ("T-1", 2)],
            "next_due": T0 + _H,
        }, "the firings role of a unit of work must read the unit's own writes"

    def test_the_schedule(self, store: Store) -> None:
        firings = _role(store, "firings")
        assert firings.next_due() is None
        assert firings.due(T0 + 100 * _H) == []
        firings.plan("T-1", version=1, next_due=T0 + 3 * _H)
        firings.plan("T-2", version=4, next_due=T0 + _H)
        firings.plan("T-3", version=2, next_due=None)
        firings.plan("T-4", version=1, next_due=T0 + _H)
        assert firings.next_due() == T0 + _H
        assert [p.ticket_id for p in firings.due(T0 + _H)] == ["T-2", "T-4"]
        assert [p.ticket_id for p in firings.due(T0 + 5 * _H)] == ["T-2", "T-4", "T-1"]
        assert [p.ticket_id for p in firings.due(T0 + 5 * _H, limit=1)] == ["T-2"]
        assert firings.due(T0) == []
        firings.plan("T-2", version=5, next_due=None)  # replaces
        assert firings.planned("T-2") == TicketPlan(ticket_id="T-2", version=5, next_due=None), (
            "a plan from a newer version (5) must replace the stored one (4)"
        )
        # A plan from an older version (a writer that read the ticket before it changed) does
        # not replace one from a newer version; one from the same version does.
        firings.plan("T-2", version=4, next_due=T0)
        assert firings.planned("T-2") == TicketPlan(ticket_id="T-2", version=5, next_due=None), (
            "a plan from an older version (4) must not replace the stored one (5)"
        )
        assert firings.due(T0 + 5 * _H, limit=1)[0].ticket_id == "T-4"
        firings.plan("T-2", version=5, next_due=T0 + 2 * _H)
        assert firings.planned("T-2") == TicketPlan(
            ticket_id="T-2", version=5, next_due=T0 + 2 * _H
        ), "a plan from the same version (5) as the stored one must replace it"
        firings.plan("T-2", version=5, next_due=None)
        assert firings.planned("T-9") is None
        tokyo = timezone(timedelta(hours=9))
        firings.plan("T-1", version=2, next_due=(T0 + 30 * _H).astimezone(tokyo))
        assert firings.next_due() == T0 + _H
        assert firings.planned("T-1").next_due == T0 + 30 * _H

    def test_firing_instants_come_back_in_utc(self, store: Store) -> None:
        """Instants given in any zone are kept as the same instants and come back in UTC,
        on every store alike (the protocols' rule for stored instants)."""
        tokyo = timezone(timedelta(hours=9))
        firings = _role(store, "firings")
        firing = Firing(**{**_as_dict(_firing()), "at": (T0 + _H).astimezone(tokyo)})
        assert firings.record(firing, recorded_at=(T0 + 2 * _H).astimezone(tokyo))
        firings.plan("T-1", version=1, next_due=(T0 + 3 * _H).astimezone(tokyo))
        (record,) = firings.list()
        planned = firings.planned("T-1")
        (due,) = firings.due(T0 + 3 * _H)
        assert planned is not None
        got = {
            "record.firing.at": record.firing.at,
            "record.recorded_at": record.recorded_at,
            "planned.next_due": planned.next_due,
            "due[0].next_due": due.next_due,
            "next_due()": firings.next_due(),
        }
        assert got == {
            "record.firing.at": T0 + _H,
            "record.recorded_at": T0 + 2 * _H,
            "planned.next_due": T0 + 3 * _H,
            "due[0].next_due": T0 + 3 * _H,
            "next_due()": T0 + 3 * _H,
        }
        zones = {name: value.utcoffset() for name, value in got.items() if value is not None}
        assert zones == dict.fromkeys(got, timedelta(0)), f"not in UTC: {zones}"

    def test_plans_are_due_at_an_instant_in_any_zone(self, store: Store) -> None:
        """``due(at)`` compares ``at`` as an instant, whatever its zone: a plan due at 12:00
        UTC is due at 21:00 in Tokyo and at 07:00 in New York, not one microsecond before
        (a backend comparing instants as text must compare them in UTC)."""
        firings = _role(store, "firings")
        firings.plan("T-1", version=1, next_due=T0 + 3 * _H)
        got: dict[str, list[str]] = {}
        for name, zone in _ZONES.items():
            for shift, label in ((timedelta(0), "at"), (-_US, "before")):
                at = (T0 + 3 * _H + shift).astimezone(zone)
                got[f"{label} {name}"] = [p.ticket_id for p in firings.due(at)]
        assert got == {name: (["T-1"] if name.startswith("at ") else []) for name in got}, (
            "firings.due(at) must compare at as an instant, in any zone (the plan is due at "
            f"{T0 + 3 * _H}); by the zone of at, due() gave {got}"
        )

    def test_concurrent_records_of_one_key_have_one_winner(self, store: Store) -> None:
        """Engines recording the same firing at the same moment: exactly one ``record``
        returns True (the check for the key and the insert are one atomic step), and the key
        is kept once."""
        with self._racing_handles(store) as handles:
            winners = []
            for round_ in range(self.escalation_race_rounds):
                firing = _firing(level=round_)
                results = _race([partial(_record_on, h, firing) for h in handles])
                winners.append(results.count(True))
        assert winners == [1] * self.escalation_race_rounds, (
            "of several engines recording the same firing key at the same moment exactly one "
            "must get True (record checks the key and inserts in one atomic step: a unique key "
            f"or a lock); True came back this many times per round: {winners}"
        )
        firings = _role(store, "firings")
        assert len(firings.list()) == self.escalation_race_rounds
        assert len(firings.keys("T-1")) == self.escalation_race_rounds

    def test_concurrent_plans_keep_the_newest_version(self, store: Store) -> None:
        """Writers planning one ticket from different versions at the same moment: the plan
        of the newest version stays, whatever order they commit in (``plan`` compares and
        writes in one atomic step)."""
        racers = self.escalation_racers
        kept = []
        with self._racing_handles(store) as handles:
            for round_ in range(self.escalation_race_rounds):
                ticket_id = f"P-{round_:03d}"
                versions = [1 + (round_ + n) % racers for n in range(racers)]
                _race(
                    [
                        partial(_plan_on, h, ticket_id, v)
                        for h, v in zip(handles, versions, strict=True)
                    ]
                )
                kept.append(_role(store, "firings").planned(ticket_id))
        newest = [
            TicketPlan(ticket_id=f"P-{r:03d}", version=racers, next_due=T0 + racers * _H)
            for r in range(self.escalation_race_rounds)
        ]
        assert kept == newest, (
            "plans made at the same moment from different versions of a ticket must leave the "
            "plan of the newest version (plan compares the stored version and writes in one "
            "atomic step); an older plan replaced a newer one: "
            f"{[p for p, n in zip(kept, newest, strict=True) if p != n]}"
        )

    def test_firings_of_an_ended_unit_of_work_refuse(self, store: Store) -> None:
        check_ended_units_refuse(
            store,
            lambda uow: _role(uow, "firings"),
            lambda firings: {
                "record": lambda: firings.record(_firing(), recorded_at=T0),
                "keys": lambda: firings.keys("T-1"),
                "list": lambda: firings.list(),
                "plan": lambda: firings.plan("T-1", version=1, next_due=T0),
                "planned": lambda: firings.planned("T-1"),
                "due": lambda: firings.due(T0),
                "next_due": lambda: firings.next_due(),
            },
        )
        assert _role(store, "firings").list() == []
        assert _role(store, "firings").planned("T-1") is None

    def test_another_handle_sees_the_records(self, store: Store) -> None:
        self.require("reopen")
        from csmcore.storage import open_store

        other = open_store(store.url)
        try:
            assert _role(store, "firings").record(_firing(), recorded_at=T0)
            assert _role(other, "firings").record(_firing(), recorded_at=T0) is False
            _role(other, "firings").plan("T-1", version=1, next_due=T0)
            assert _role(store, "firings").next_due() == T0
        finally:
            other.close()

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda f: f.record("x", recorded_at=T0), "firing="),
            (lambda f: f.record(_firing(), recorded_at=datetime(2025, 1, 1)), "recorded_at"),
            (lambda f: f.keys(""), "ticket_id=''"),
            (lambda f: f.list(limit=-1), "limit=-1"),
            (lambda f: f.plan("T-1", version=-1, next_due=None), "version=-1"),
            (lambda f: f.plan("T-1", version=1, next_due="soon"), "next_due="),
            (lambda f: f.due(datetime(2025, 1, 1)), "at"),
            (lambda f: f.planned("x" * 300), "ticket_id="),
        ],
    )
    def test_firings_refuse_bad_arguments(self, store: Store, call: Any, message: str) -> None:
        firings = _role(store, "firings")
        with pytest.raises((ValidationError, NaiveDatetimeError), match=message):
            call(firings)
        assert firings.list() == []


def _as_dict(firing: Firing) -> dict[str, Any]:
    return {
        "rule": firing.rule,
        "rule_version": firing.rule_version,
        "level": firing.level,
        "ticket_id": firing.ticket_id,
        "target": firing.target,
        "cycle": firing.cycle,
        "at": firing.at,
    }


def _paging(store: Any) -> Any:
    """The outbox role of ``store`` (or of a unit of work) when it offers the optional
    :class:`~csmcore.storage.protocols.OutboxPaging`; skips the running test otherwise (the
    dispatcher then pages with ``due``, as the protocol allows)."""
    outbox = _role(store, "outbox")
    if not isinstance(outbox, OutboxPaging):
        pytest.skip(
            f"the outbox role ({type(outbox).__name__}) does not offer the optional OutboxPaging "
            "(due_after): the dispatcher pages with due instead"
        )
    return outbox


class _OutboxPagingChecks(StoreFixtures):
    """The optional :class:`~csmcore.storage.protocols.OutboxPaging` of the ``outbox`` role
    (``due_after``, a cursor through the due messages), checked where the role offers it: pages
    read with it follow ``due``'s order exactly, each message once, ties broken by key by code
    point. Part of :class:`OutboxTests` (skipped, saying so, where the role does not offer it)."""

    def _fill(self, store: Any) -> None:
        outbox = _role(store, "outbox")
        tied = ["b", "a", "B", "é", "\U0001f600", "ключ/0", "a/1", "a b", "Z" * 255]
        outbox.put(
            [_message(key, 1) for key in tied]
            + [_message("late", 2), _message("first", 0), _message("zzz", 0)]
            + [_message(key, 1) for key in ("delivered", "dead")]
            + [_message("not yet", 9)]
        )
        outbox.delivered("delivered", at=T0)
        outbox.failed("dead", at=T0, error="x", retry_at=None)

    def test_due_after_pages_in_the_order_of_due(self, store: Store) -> None:
        outbox = _paging(store)
        self._fill(store)
        at = T0 + 3 * _H
        every = [(m.next_attempt_at, m.key) for m in outbox.due(at, limit=100)]
        assert len(every) == 12
        assert every == sorted(every), "due is not by (next_attempt_at, key)"
        for size in (1, 2, 5, 100):
            pages = [(m.next_attempt_at, m.key) for m in outbox.due(at, limit=size)]
            for _ in range(len(every) + 1):  # a cursor that does not advance fails, not hangs
                after = pages[-1]
                page = outbox.due_after(at, after=after, limit=size)
                assert len(page) <= size, f"due_after(limit={size}) gave {len(page)} messages"
                pages += [(m.next_attempt_at, m.key) for m in page]
                if len(page) < size:
                    break
                assert pages[-1] > after, f"due_after(after={after!r}) ended at {pages[-1]!r}"
            assert pages == every, f"paging by {size}: {pages} != due's {every}"

    def test_due_after_starts_after_any_cursor(self, store: Store) -> None:
        """The cursor need not be a stored message's: the message read last may have been
        claimed, delivered or retried since. Its instant is compared as an instant, in any
        zone; ties with it are broken by key."""
        outbox = _paging(store)
        self._fill(store)
        at = T0 + 3 * _H
        tokyo = timezone(timedelta(hours=9))

        def keys(after: tuple[datetime, str], limit: int = 100) -> list[str]:
            return [m.key for m in outbox.due_after(at, after=after, limit=limit)]

        assert keys((T0 + _H, "a/1")) == ["b", "é", "ключ/0", "\U0001f600", "late"]
        assert keys(((T0 + _H).astimezone(tokyo), "a/1")) == keys((T0 + _H, "a/1"))
        assert keys((T0 + _H, "a.")) == ["a/1", *keys((T0 + _H, "a/1"))]  # "a b" < "a." < "a/1"
        assert keys((T0 + _H, "\U0001f600")) == ["late"]
        assert keys((T0 - _H, "zzz")) == [m.key for m in outbox.due(at)]
        assert keys((T0 + 30 * timedelta(minutes=1), "a")) == keys((T0, "zzz"))
        assert keys((T0 + _H, "a"), limit=2) == ["a b", "a/1"]
        assert keys((T0 + _H, "a"), limit=0) == []
        assert keys((at, "zzz")) == []
        assert keys((T0 + 10 * _H, "a")) == []  # a cursor past ``at``: nothing

    def test_due_after_sees_claims_and_retries(self, store: Store) -> None:
        outbox = _paging(store)
        outbox.put([_message("a"), _message("b"), _message("c")])
        assert outbox.claim("b", attempts=0, until=T0 + 2 * _H) is True  # leased: moved on
        outbox.delivered("a", at=T0)
        assert [m.key for m in outbox.due_after(T0 + _H, after=(T0 - _H, "a"))] == ["c"]
        assert [m.key for m in outbox.due_after(T0 + 2 * _H, after=(T0, "c"))] == ["b"]

    def test_due_after_in_a_unit_of_work(self, store: Store) -> None:
        _paging(store)
        with store.unit_of_work() as uow:
            outbox = _paging(uow)
            outbox.put([_message("a"), _message("b")])  # seen inside before the commit
            assert [m.key for m in outbox.due_after(T0, after=(T0, "a"))] == ["b"]
        assert [m.key for m in _paging(store).due_after(T0, after=(T0 - _H, "a"))] == ["a", "b"]

    @pytest.mark.parametrize(
        ("after", "limit", "message"),
        [
            (None, 1, "after=None"),
            ((T0,), 1, r"after=\("),
            ((T0, "a", "b"), 1, r"after=\("),
            ([T0, "a"], 1, r"after=\["),
            (("x", "a"), 1, r"after\[0\]"),
            ((datetime(2025, 1, 1), "a"), 1, r"after\[0\]"),
            ((T0, ""), 1, r"after\[1\]=''"),
            ((T0, 3), 1, r"after\[1\]=3"),
            ((T0, "a\x00"), 1, r"after\[1\]"),
            ((T0, "a"), -1, "limit=-1"),
            ((T0, "a"), None, "limit=None"),
        ],
    )
    def test_due_after_refuses_bad_arguments(
        self, store: Store, after: Any, limit: Any, message: str
    ) -> None:
        outbox = _paging(store)
        with pytest.raises((ValidationError, NaiveDatetimeError), match=message):
            outbox.due_after(T0, after=after, limit=limit)
        with pytest.raises(NaiveDatetimeError, match="at"):
            outbox.due_after(datetime(2025, 1, 1), after=(T0, "a"))


class OutboxTests(_OutboxPagingChecks, _Racing):
    """The ``outbox`` role: idempotent puts, due order, optimistic claims, delivery, retries,
    dead letters, and atomicity with a unit of work."""

    def test_outbox_satisfies_the_protocol(self, store: Store) -> None:
        assert isinstance(_role(store, "outbox"), OutboxRepository)

    def test_put_is_idempotent_by_key(self, store: Store) -> None:
        outbox = _role(store, "outbox")
        rule = "put() returns how many messages were new (a key already stored counts 0)"
        assert outbox.put([_message("a"), _message("b"), _message("a")]) == 2, rule
        assert outbox.put([_message("a", text="changed")]) == 0, rule
        assert outbox.get("a") == _message("a"), "put() must leave a stored key's message as it is"
        assert outbox.put([]) == 0
        assert [m.key for m in outbox.list()] == ["a", "b"]

    def test_due_in_order_of_next_attempt(self, store: Store) -> None:
        outbox = _role(store, "outbox")
        outbox.put([_message("late", 3), _message("b", 1), _message("a", 1), _message("x", 9)])
        assert [m.key for m in outbox.due(T0 + 3 * _H)] == ["a", "b", "late"]
        assert [m.key for m in outbox.due(T0 + 3 * _H, limit=2)] == ["a", "b"]
        assert outbox.due(T0) == []

    def test_claim_is_optimistic_and_leases(self, store: Store) -> None:
        outbox = _role(store, "outbox")
        outbox.put([_message("a")])
        lease = T0 + 2 * _H
        assert outbox.claim("a", attempts=0, until=lease) is True
        assert outbox.claim("a", attempts=0, until=lease) is False  # someone claimed it
        claimed = outbox.get("a")
        assert claimed.attempts == 1
        assert claimed.next_attempt_at == lease
        assert outbox.due(lease - timedelta(microseconds=1)) == []
        assert [m.key for m in outbox.due(lease)] == ["a"]  # the lease ran out
        with pytest.raises(NotFound, match="'nope'"):
            outbox.claim("nope", attempts=0, until=lease)

    def test_delivered_failed_and_dead(self, store: Store) -> None:
        outbox = _role(store, "outbox")
        outbox.put([_message("a"), _message("b"), _message("c")])
        outbox.delivered("a", at=T0 + _H)
        got = outbox.get("a")
        assert got.state is OutboxState.DELIVERED
        assert got.delivered_at == T0 + _H
        outbox.failed("b", at=T0 + _H, error="timeout", retry_at=T0 + 2 * _H)
        retried = outbox.get("b")
        assert (retried.state, retried.last_error) == (OutboxState.PENDING, "timeout")
        assert retried.next_attempt_at == T0 + 2 * _H
        outbox.failed("c", at=T0 + _H, error="550 no such user", retry_at=None)
        assert outbox.get("c").state is OutboxState.DEAD
        assert [m.key for m in outbox.due(T0 + 10 * _H)] == ["b"]
        assert outbox.claim("c", attempts=0, until=T0) is False, (
            "claim() of a DEAD message must return False (only a PENDING message is claimed)"
        )
        assert [m.key for m in outbox.list(state=OutboxState.DEAD)] == ["c"]
        assert [m.key for m in outbox.list(state="delivered")] == ["a"]
        assert [m.key for m in outbox.list(limit=2)] == ["a", "b"]
        with pytest.raises(NotFound):
            outbox.delivered("nope", at=T0)
        with pytest.raises(NotFound):
            outbox.failed("nope", at=T0, error="x", retry_at=None)
        with pytest.raises(NotFound):
            outbox.get("nope")

    def test_a_rolled_back_unit_of_work_puts_nothing(self, store: Store) -> None:
        class Boom(Exception):
            pass

        def write_then_fail() -> None:
            with store.unit_of_work() as uow:
                assert _role(uow, "outbox").put([_message("a")]) == 1
                assert _role(uow, "outbox").get("a") == _message("a")
                raise Boom

        with pytest.raises(Boom):
            write_then_fail()
        assert _role(store, "outbox").list() == []
        with store.unit_of_work() as uow:
            _role(uow, "outbox").put([_message("a")])
        assert [m.key for m in _role(store, "outbox").list()] == ["a"]

    def test_a_unit_of_work_reads_its_own_messages(self, store: Store) -> None:
        """Inside a unit of work every read of the role sees the unit's own writes, as its
        ``tickets`` do: ``get``, ``due`` and ``list``, after ``put``, ``claim`` and
        ``delivered``."""
        _role(store, "outbox").put([_message("a", 1), _message("b", 2)])
        with store.unit_of_work() as uow:
            mine = _role(uow, "outbox")
            assert mine.put([_message("c", 0)]) == 1
            assert mine.claim("a", attempts=0, until=T0 + 9 * _H)
            mine.delivered("b", at=T0 + 2 * _H)
            seen = {
                "get": mine.get("a").attempts,
                "due": [m.key for m in mine.due(T0 + 5 * _H)],
                "list": [m.key for m in mine.list(state=OutboxState.PENDING)],
                "delivered": [m.key for m in mine.list(state=OutboxState.DELIVERED)],
            }
        assert seen == {"get": 1, "due": ["c"], "list": ["c", "a"], "delivered": ["b"]}, (
            "the outbox role of a unit of work must read the unit's own writes"
        )

    def test_outbox_instants_come_back_in_utc(self, store: Store) -> None:
        """``created_at``, ``next_attempt_at`` and ``delivered_at`` given in any zone come
        back as the same instants in UTC, on every store alike (the request inside a message
        is kept as given)."""
        tokyo = timezone(timedelta(hours=9))
        outbox = _role(store, "outbox")
        message = _message("a")
        local = OutboxMessage(
            key="a",
            request=message.request,
            next_attempt_at=T0.astimezone(tokyo),
            created_at=T0.astimezone(tokyo),
        )
        outbox.put([local, _message("b"), _message("c")])
        outbox.claim("b", attempts=0, until=(T0 + _H).astimezone(tokyo))
        outbox.delivered("c", at=(T0 + 2 * _H).astimezone(tokyo))
        outbox.failed("a", at=T0, error="busy", retry_at=(T0 + 3 * _H).astimezone(tokyo))
        a, b, c = (outbox.get(key) for key in "abc")
        got = {
            "a.created_at": a.created_at,
            "a.next_attempt_at": a.next_attempt_at,
            "b.next_attempt_at": b.next_attempt_at,
            "c.delivered_at": c.delivered_at,
        }
        assert got == {
            "a.created_at": T0,
            "a.next_attempt_at": T0 + 3 * _H,
            "b.next_attempt_at": T0 + _H,
            "c.delivered_at": T0 + 2 * _H,
        }
        zones = {name: value.utcoffset() for name, value in got.items() if value is not None}
        assert zones == dict.fromkeys(got, timedelta(0)), f"not in UTC: {zones}"

    def test_messages_are_due_at_an_instant_in_any_zone(self, store: Store) -> None:
        """``due(at)`` (and ``due_after(at, ...)`` where offered) compare ``at`` as an
        instant, whatever its zone: a message due at 10:00 UTC is due at 19:00 in Tokyo and
        at 05:00 in New York, not one microsecond before (a backend comparing instants as
        text must compare them in UTC)."""
        outbox = _role(store, "outbox")
        outbox.put([_message("a", 1)])
        paging = isinstance(outbox, OutboxPaging)
        got: dict[str, list[str]] = {}
        for name, zone in _ZONES.items():
            for shift, label in ((timedelta(0), "at"), (-_US, "before")):
                at = (T0 + _H + shift).astimezone(zone)
                got[f"due, {label} {name}"] = [m.key for m in outbox.due(at)]
                if paging:
                    found = outbox.due_after(at, after=(T0 - _H, "a"))
                    got[f"due_after, {label} {name}"] = [m.key for m in found]
        assert got == {name: (["a"] if ", at " in name else []) for name in got}, (
            "outbox.due(at) and due_after(at, ...) must compare at as an instant, in any zone "
            f"(the message is due at {T0 + _H}); by the zone of at, they gave {got}"
        )

    def test_due_orders_by_next_attempt_then_key(self, store: Store) -> None:
        """``due`` orders by ``next_attempt_at`` (which a retry moves), then by key: neither by
        key alone, nor by creation, nor in the order the backend happens to keep."""
        outbox = _role(store, "outbox")
        outbox.put([_message("z", 1), _message("a", 2), _message("m", 1), _message("k", 1)])
        outbox.failed("m", at=T0 + _H, error="busy", retry_at=T0 + 3 * _H)  # due again at 3
        due = [m.key for m in outbox.due(T0 + 5 * _H)]
        assert due == ["k", "z", "a", "m"], (
            "due() orders PENDING messages by next_attempt_at, then by key (a failed message "
            f"retried later comes after those due earlier); got {due}"
        )
        first = [m.key for m in outbox.due(T0 + 5 * _H, limit=2)]
        assert first == ["k", "z"], f"due(limit=2) gives the first two in that order: {first}"

    def test_list_orders_by_creation_then_key(self, store: Store) -> None:
        outbox = _role(store, "outbox")
        outbox.put([_message("a", 3), _message("c", 1), _message("b", 1), _message("d", 2)])
        listed = [m.key for m in outbox.list()]
        assert listed == ["b", "c", "d", "a"], (
            f"list() orders messages by created_at, then by key; got {listed}"
        )
        assert [m.key for m in outbox.list(limit=3)] == ["b", "c", "d"]
        outbox.delivered("c", at=T0 + 5 * _H)
        outbox.delivered("a", at=T0 + 4 * _H)
        assert [m.key for m in outbox.list(state=OutboxState.DELIVERED)] == ["c", "a"]

    def test_a_delivery_keeps_the_last_error(self, store: Store) -> None:
        """``delivered`` sets the state and ``delivered_at`` and leaves ``last_error`` (why the
        attempt before failed) as it was."""
        outbox = _role(store, "outbox")
        outbox.put([_message("a")])
        outbox.failed("a", at=T0 + _H, error="timeout", retry_at=T0 + 2 * _H)
        outbox.delivered("a", at=T0 + 2 * _H)
        got = outbox.get("a")
        assert (got.state, got.delivered_at, got.last_error) == (
            OutboxState.DELIVERED,
            T0 + 2 * _H,
            "timeout",
        ), f"a delivery keeps the last error and the next_attempt_at; got {got}"
        assert got.next_attempt_at == T0 + 2 * _H

    def test_concurrent_claims_have_one_winner(self, store: Store) -> None:
        """Dispatchers claiming the same message at the same attempt count: exactly one wins
        (the comparison of ``attempts`` and the update are one atomic step)."""
        outbox = _role(store, "outbox")
        winners, attempts = [], []
        with self._racing_handles(store) as handles:
            for round_ in range(self.escalation_race_rounds):
                key = f"k/{round_}"
                outbox.put([_message(key)])
                results = _race([partial(_claim_on, h, key) for h in handles])
                winners.append(results.count(True))
                attempts.append(outbox.get(key).attempts)
        rounds = self.escalation_race_rounds
        assert (winners, attempts) == ([1] * rounds, [1] * rounds), (
            "of several dispatchers claiming one message with the same attempts exactly one "
            "must get True and the message must count one attempt (claim compares attempts and "
            f"updates in one atomic step); winners per round {winners}, attempts {attempts}"
        )

    def test_outbox_of_an_ended_unit_of_work_refuses(self, store: Store) -> None:
        _role(store, "outbox").put([_message("b")])

        def calls(outbox: Any) -> dict[str, Any]:
            found = {
                "put": lambda: outbox.put([_message("a")]),
                "due": lambda: outbox.due(T0),
                "claim": lambda: outbox.claim("b", attempts=0, until=T0 + _H),
                "delivered": lambda: outbox.delivered("b", at=T0),
                "failed": lambda: outbox.failed("b", at=T0, error="x", retry_at=None),
                "get": lambda: outbox.get("b"),
                "list": lambda: outbox.list(),
            }
            if isinstance(outbox, OutboxPaging):  # the optional cursor, where offered
                found["due_after"] = lambda: outbox.due_after(T0, after=(T0, "a"))
            return found

        check_ended_units_refuse(store, lambda uow: _role(uow, "outbox"), calls)
        assert _role(store, "outbox").list() == [_message("b")]

    def test_text_and_data_round_trip(self, store: Store) -> None:
        outbox = _role(store, "outbox")
        odd = _message("ключ/0 ✓", text='Größe 😀 "quoted" \\ back')
        outbox.put([odd])
        assert outbox.get("ключ/0 ✓") == odd

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda o: o.put("a"), "messages="),
            (lambda o: o.put(["a"]), r"messages\[0\]"),
            (lambda o: o.due(datetime(2025, 1, 1)), "at"),
            (lambda o: o.due(T0, limit=-1), "limit=-1"),
            (lambda o: o.due(T0, limit=None), "limit=None"),  # an int, as the protocol says
            (lambda o: o.due(T0, limit=2.0), "limit=2.0"),
            (lambda o: o.claim("a", attempts=-1, until=T0), "attempts=-1"),
            (lambda o: o.claim("", attempts=0, until=T0), "key=''"),
            (lambda o: o.failed("a", at=T0, error=3, retry_at=None), "error=3"),
            (lambda o: o.list(state="lost"), "state='lost'"),
        ],
    )
    def test_outbox_refuses_bad_arguments(self, store: Store, call: Any, message: str) -> None:
        outbox = _role(store, "outbox")
        with pytest.raises((ValidationError, NaiveDatetimeError), match=message):
            call(outbox)
        assert outbox.list() == []
