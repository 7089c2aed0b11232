"""Schema versions, migrations and backend faults (:class:`SchemaTests`, :class:`FaultTests`)."""

from __future__ import annotations

import pytest

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.errors import (
    SchemaVersionError,
    StorageError,
)
from csmcore.storage import open_store
from csmcore.storage.protocols import Store, TicketsByRequester
from csmcore.testing.builders import T0, make_comment, make_ticket
from csmcore.testing.storage_suite._base import (
    BackendFaults,
    OldSchemas,
    SchemaAccess,
    StoreFactory,
    StoreFixtures,
    assert_driver_cause,
)
from csmcore.tickets import (
    RequesterChanged,
    Ticket,
    TicketEvent,
)


def _fill_and_close(store: Store) -> tuple[str, Ticket, BusinessCalendar]:
    """Write a ticket with some history (its requester changed from ann to bob) and a
    calendar, and close ``store``; return its URL and what was written."""
    store.tickets.add(make_ticket("S-1", tags={"vip"}, fields={"plan": "gold"}))
    changes: list[TicketEvent] = [
        make_comment(T0, "kept"),
        RequesterChanged(at=T0, requester="bob"),
    ]
    ticket = store.tickets.append("S-1", changes, expected_version=1)
    calendar = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
    store.calendars.put("support", calendar, expected_version=0)
    url = store.url
    store.close()
    return url, ticket, calendar


def _check_filled(url: str, ticket: Ticket, calendar: BusinessCalendar) -> None:
    """Open ``url`` and check that what :func:`_fill_and_close` wrote is there, readable and
    queryable."""
    again = open_store(url)
    try:
        assert again.tickets.get(ticket.id) == ticket
        assert again.tickets.find(cd.HasTags({"vip"})) == [ticket]
        assert again.tickets.count(cd.Eq("fields.plan", "gold")) == 1
        assert again.calendars.get("support").value == calendar
        if isinstance(again.tickets, TicketsByRequester):  # the former requester finds it too
            for requester in ("ann", "bob"):
                found = again.tickets.stream_by_requester(requester, cd.Always())
                got = [t.id for batch in found for t in batch]
                assert got == [ticket.id], (
                    f"stream_by_requester({requester!r}) on the store opened again must find "
                    f"{ticket.id!r}, whose requester an append changed from 'ann' to 'bob' "
                    f"(every requester a ticket had counts, kept across reopening); got {got}"
                )
        again.tickets.append(ticket.id, [make_comment(T0, "after")], expected_version=3)
    finally:
        again.close()


class SchemaTests(StoreFixtures):
    """Schema versions: recorded, migrated forward when opened, a newer one refused.

    Needs ``reopen`` and the :class:`SchemaAccess` hook (:class:`OldSchemas` too once there is
    more than one schema version).
    """

    def access(self, factory: StoreFactory) -> SchemaAccess:
        """The factory's :class:`SchemaAccess` (skips without ``reopen``; fails without the hook
        unless ``schema`` is opted out of)."""
        self.require("reopen")
        found: SchemaAccess = self.hook(factory, SchemaAccess)
        return found

    def test_a_new_store_records_the_schema_version(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        access = self.access(store_factory)
        assert access.schema_version >= 1
        url, ticket, calendar = _fill_and_close(store)
        assert access.read_schema_version(url) == access.schema_version
        _check_filled(url, ticket, calendar)
        assert access.read_schema_version(url) == access.schema_version

    def test_a_store_written_by_a_newer_version_is_refused_untouched(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        access = self.access(store_factory)
        url, ticket, calendar = _fill_and_close(store)
        layout = access.schema_layout(url)
        for newer in (access.schema_version + 1, access.schema_version + 97):
            access.write_schema_version(url, newer)
            with pytest.raises(SchemaVersionError) as info:
                open_store(url).close()
            message = str(info.value)
            assert str(newer) in message, f"the message should name version {newer}: {message}"
            assert "newer" in message.lower(), f"the message should say why: {message}"
            assert access.read_schema_version(url) == newer
            assert access.schema_layout(url) == layout
        access.write_schema_version(url, access.schema_version)
        _check_filled(url, ticket, calendar)

    def test_a_store_without_a_recorded_version_is_refused_untouched(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        access = self.access(store_factory)
        url, ticket, calendar = _fill_and_close(store)
        access.write_schema_version(url, None)
        assert access.read_schema_version(url) is None
        layout = access.schema_layout(url)
        with pytest.raises(SchemaVersionError):
            open_store(url).close()
        assert access.read_schema_version(url) is None
        assert access.schema_layout(url) == layout
        access.write_schema_version(url, access.schema_version)
        _check_filled(url, ticket, calendar)

    def test_an_older_schema_migrates_forward_when_opened(
        self, store_factory: StoreFactory, stores: StoreFactory
    ) -> None:
        access = self.access(store_factory)
        if access.schema_version == 1:
            pytest.skip(f"{type(self).__name__}: schema version 1 is the first; none is older")
        old: OldSchemas = self.hook(store_factory, OldSchemas)
        fresh = stores()
        fresh.close()
        current = access.schema_layout(fresh.url)
        for version in range(1, access.schema_version):
            store = stores()
            url, ticket, calendar = _fill_and_close(store)
            old.write_old_schema(url, version)
            assert access.read_schema_version(url) == version
            _check_filled(url, ticket, calendar)
            assert access.read_schema_version(url) == access.schema_version
            assert access.schema_layout(url) == current, f"migrated from version {version}"


class FaultTests(StoreFixtures):
    """Backend failures reach callers as :class:`~csmcore.errors.StorageError` with the driver's
    error as ``__cause__`` (needs the :class:`BackendFaults` hook)."""

    def test_an_unreachable_backend_raises_storage_error(self, store_factory: StoreFactory) -> None:
        faults: BackendFaults = self.hook(store_factory, BackendFaults)

        def open_and_count() -> None:
            store = open_store(faults.unreachable_url())
            try:
                store.tickets.count(cd.Always())
            finally:
                store.close()

        with pytest.raises(StorageError) as info:
            open_and_count()
        assert_driver_cause(info.value)

    def test_a_failing_backend_raises_storage_error(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        faults: BackendFaults = self.hook(store_factory, BackendFaults)
        store.tickets.add(make_ticket("T-1"))
        faults.break_backend(store.url)
        with pytest.raises(StorageError) as info:
            store.tickets.get("T-1")
        assert_driver_cause(info.value)
