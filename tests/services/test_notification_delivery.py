"""End to end on memory, SQLite and PostgreSQL: the engine's run puts a notification in the
outbox in the unit of work of its firing, and the dispatcher delivers it by SMTP to a real
local server, held to business hours, once per key, with the key in the mail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller

from csmcore import BusinessCalendar, SlaBook, SlaPolicy, SlaTarget
from csmcore.clock import FixedClock
from csmcore.conditions import Always
from csmcore.escalation import EscalationLevel, EscalationRule, Notify, PercentUsed
from csmcore.services import Dispatcher, EmailTemplate, EscalationEngine, SmtpNotifier
from csmcore.storage import OutboxState, Store, role_of
from csmcore.testing.builders import make_ticket
from tests.services.test_dispatcher import outbox
from tests.services.test_notifiers import Sink, _free_port

OFFICE = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
BOOK = SlaBook(
    calendar=OFFICE,
    policies=[
        SlaPolicy(
            name="std",
            position=1,
            default=True,
            targets=[
                SlaTarget(
                    metric="total_resolution", within=timedelta(hours=24), business_hours=False
                )
            ],
        )
    ],
)
RULE = EscalationRule(
    name="page-manager",
    condition=Always(),
    levels=[
        EscalationLevel(
            trigger=PercentUsed(target="total_resolution", percent=75),
            actions=[
                Notify(
                    channel="email",
                    recipient="manager@example.com",
                    template="page",
                    data={"percent": 75},
                    business_hours=True,
                )
            ],
        )
    ],
)
FRIDAY_10 = datetime(2025, 1, 10, 10, tzinfo=timezone.utc)
SATURDAY_4 = FRIDAY_10 + timedelta(hours=18)
MONDAY_9 = datetime(2025, 1, 13, 9, tzinfo=timezone.utc)


@pytest.fixture
def server() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def test_engine_firing_to_mail(store: Store, server: tuple[Sink, int]) -> None:
    sink, port = server
    store.tickets.add(make_ticket("T-42", at=FRIDAY_10, priority="high"))
    engine = EscalationEngine(store, BOOK, [RULE])
    assert engine.ticket_changed("T-42") == SATURDAY_4
    run = engine.run(SATURDAY_4)
    assert [p.firing.at for p in run.firings] == [SATURDAY_4]
    (record,) = role_of(store, "firings").list()
    (message,) = outbox(store).list()
    assert message.key == f"{record.firing.key_text}/0"
    assert message.request.business_hours is True
    assert message.request.not_before == MONDAY_9
    clock = FixedClock(SATURDAY_4)
    smtp = SmtpNotifier(
        host="127.0.0.1",
        port=port,
        security="none",
        from_address="desk@example.com",
        templates={"page": EmailTemplate(subject="[{ticket_id}] {percent} %", body="{rule}\n")},
        timeout=10,
    )
    dispatcher = Dispatcher(store, {"email": smtp}, clock=clock, calendars=BOOK)
    assert dispatcher.run().delivered == ()
    clock.set(MONDAY_9 - timedelta(microseconds=1))
    assert dispatcher.run().delivered == ()
    assert sink.received == []
    clock.set(MONDAY_9)
    assert dispatcher.run().delivered == (message.key,)
    ((sender, recipients, mail),) = sink.received
    assert (sender, recipients) == ("desk@example.com", ["manager@example.com"])
    assert mail["Subject"] == "[T-42] 75 %"
    assert mail["X-Csmcore-Idempotency-Key"] == message.key
    assert str(mail.get_payload()).strip() == "page-manager"
    stored = outbox(store).get(message.key)
    assert stored.state is OutboxState.DELIVERED
    assert stored.delivered_at == MONDAY_9
    # Running both again sends nothing more.
    assert engine.run(MONDAY_9).firings == ()
    assert dispatcher.run().delivered == ()
    assert len(sink.received) == 1
