"""Built-in notifiers: the template renderer, CallableNotifier, LoggingNotifier, and
SmtpNotifier against a real local SMTP server (aiosmtpd) on a free port: headers and body as
sent, authentication, refusals retried by the dispatcher and then dead-lettered."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from csmcore.clock import FixedClock
from csmcore.errors import ValidationError
from csmcore.escalation import NotificationRequest
from csmcore.services import (
    Backoff,
    CallableNotifier,
    Dispatcher,
    EmailTemplate,
    LoggingNotifier,
    PermanentDeliveryError,
    SmtpNotifier,
    TemplateError,
    render,
)
from csmcore.storage import OutboxMessage, OutboxState, open_store
from tests.services.test_dispatcher import outbox

MON_9 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
KEY = '["page-manager",1,0,"T-7","resolution",1]/0'
TEMPLATES = {
    "page": EmailTemplate(
        subject="[{ticket_id}] {percent} % of resolution used",
        body=(
            "Ticket {ticket_id} has used {percent} % of its resolution time.\n"
            "Key: {idempotency_key}\n"
        ),
    )
}


def request(recipient: str = "manager@example.com", template: str = "page") -> NotificationRequest:
    return NotificationRequest(
        channel="email",
        recipient=recipient,
        template=template,
        data={"percent": 75, "rule": "page-manager"},
        not_before=MON_9,
        idempotency_key=KEY,
        ticket_id="T-7",
    )


# --- render -----------------------------------------------------------------------------------


def test_render_fills_plain_names_and_literal_braces() -> None:
    assert render("{a} {{b}} {c}", {"a": 1, "c": None}) == "1 {b} "


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{0}", "not a plain name"),
        ("{}", "not a plain name"),
        ("{a[0]}", "not a plain name"),
        ("{a.real}", "not a plain name"),
        ("{a!r}", "conversion or format spec"),
        ("{a:>99999999}", "conversion or format spec"),
        ("{a", "malformed"),
        ("}", "malformed"),
        ("{b}", r"\{b\} is not in the data; known: \['a'\]"),
    ],
)
def test_render_refuses(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as raised:
        render(template, {"a": 1})
    assert isinstance(raised.value, PermanentDeliveryError)
    assert isinstance(raised.value, ValueError)


# --- callable and logging ---------------------------------------------------------------------


def test_callable_notifier_passes_request_and_key_and_its_errors() -> None:
    seen: list[tuple[str, str]] = []
    CallableNotifier(lambda r, k: seen.append((r.ticket_id, k))).deliver(
        request(), key=KEY, attempt=1
    )
    assert seen == [("T-7", KEY)]

    def boom(r: NotificationRequest, k: str) -> None:
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        CallableNotifier(boom).deliver(request(), key=KEY, attempt=1)
    with pytest.raises(ValidationError, match="not callable"):
        CallableNotifier(3)  # type: ignore[arg-type]


def test_logging_notifier_writes_a_structured_record(caplog: pytest.LogCaptureFixture) -> None:
    notifier = LoggingNotifier("desk.pages", level="WARNING", message="page {ticket_id} {percent}")
    with caplog.at_level(logging.INFO, logger="desk.pages"):
        notifier.deliver(request(), key=KEY, attempt=2)
    (record,) = caplog.records
    assert (record.name, record.levelno, record.getMessage()) == (
        "desk.pages",
        logging.WARNING,
        "page T-7 75",
    )
    fields: dict[str, Any] = record.__dict__
    assert fields["csm_key"] == KEY
    assert fields["csm_attempt"] == 2
    assert fields["csm_recipient"] == "manager@example.com"
    assert fields["csm_template"] == "page"
    assert fields["csm_ticket_id"] == "T-7"
    assert fields["csm_channel"] == "email"
    assert fields["csm_data"] == {"percent": 75, "rule": "page-manager"}


def test_logging_notifier_default_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="csmcore.notifications"):
        LoggingNotifier().deliver(request(), key=KEY, attempt=1)
    assert caplog.records[0].getMessage() == (
        "notification page to manager@example.com for ticket T-7"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"logger": 3}, "logger=3"),
        ({"level": "LOUD"}, "level='LOUD' is not a logging level"),
        ({"level": 2.5}, "level=2.5"),
        ({"message": "{a.b}"}, "not a plain name"),
    ],
)
def test_logging_notifier_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LoggingNotifier(**kwargs)


# --- SMTP -------------------------------------------------------------------------------------


class Sink:
    """An aiosmtpd handler that keeps what it receives, or refuses with ``refuse``."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.received: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse is not None:
            return self.refuse
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"desk", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = _free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def notifier(port: int = 25, **kwargs: Any) -> SmtpNotifier:
    arguments: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "from_address": "desk@example.com",
        "templates": TEMPLATES,
        "security": "none",
        "timeout": 10,
        **kwargs,
    }
    return SmtpNotifier(**arguments)


def test_smtp_mail_arrives_with_headers_and_body(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    notifier(port).deliver(request(), key=KEY, attempt=1)
    ((sender, recipients, mail),) = sink.received
    assert (sender, recipients) == ("desk@example.com", ["manager@example.com"])
    assert mail["Subject"] == "[T-7] 75 % of resolution used"
    assert mail["From"] == "desk@example.com"
    assert mail["To"] == "manager@example.com"
    assert mail["X-Csmcore-Idempotency-Key"] == KEY
    message_id = mail["Message-ID"]
    assert message_id.startswith("<csmcore.")
    assert message_id.endswith("@example.com>")
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.decode().replace("\r\n", "\n") == (
        f"Ticket T-7 has used 75 % of its resolution time.\nKey: {KEY}\n"
    )
    # The same key gives the same Message-ID on every attempt; another key another one.
    notifier(port).deliver(request(), key=KEY, attempt=2)
    other = request()
    notifier(port).deliver(other, key="other/0", attempt=1)
    ids = [m["Message-ID"] for _, _, m in sink.received]
    assert ids[0] == ids[1] != ids[2]


def test_smtp_logs_in_with_credentials(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    notifier(port, username="desk", password="s3cret").deliver(request(), key=KEY, attempt=1)
    assert len(sink.received) == 1
    import smtplib

    with pytest.raises(smtplib.SMTPAuthenticationError):
        notifier(port, username="desk", password="wrong").deliver(request(), key=KEY, attempt=1)
    assert len(sink.received) == 1


def test_smtp_maps_recipients_and_refuses_non_addresses(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    addresses = {"tier2": "tier2-lead@example.com"}
    notifier(port, address_of=addresses.__getitem__).deliver(
        request(recipient="tier2"), key=KEY, attempt=1
    )
    assert sink.received[0][1] == ["tier2-lead@example.com"]
    with pytest.raises(PermanentDeliveryError, match="'tier2' gives 'tier2', not an email"):
        notifier(port).deliver(request(recipient="tier2"), key=KEY, attempt=1)
    with pytest.raises(
        TemplateError, match=r"template 'nope' is not configured; known: \['page'\]"
    ):
        notifier(port).deliver(request(template="nope"), key=KEY, attempt=1)


def test_smtp_header_injection_from_data_is_flattened(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    sneaky = NotificationRequest(
        channel="email",
        recipient="manager@example.com",
        template="page",
        data={"percent": "75\nBcc: everyone@example.com"},
        not_before=MON_9,
        idempotency_key=KEY,
        ticket_id="T-7",
    )
    notifier(port).deliver(sneaky, key=KEY, attempt=1)
    ((_, recipients, mail),) = sink.received
    assert recipients == ["manager@example.com"]
    assert mail["Bcc"] is None


def test_dispatcher_delivers_over_smtp(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    store = open_store("memory://")
    outbox(store).put([OutboxMessage.new(request(), created_at=MON_9)])
    clock = FixedClock(MON_9)
    run = Dispatcher(store, {"email": notifier(port)}, clock=clock).run()
    assert run.delivered == (KEY,)
    assert sink.received[0][2]["X-Csmcore-Idempotency-Key"] == KEY


def test_a_refusing_server_is_retried_then_dead_lettered() -> None:
    sink = Sink(refuse="550 Mailbox unavailable")
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        store = open_store("memory://")
        outbox(store).put([OutboxMessage.new(request(), created_at=MON_9)])
        clock = FixedClock(MON_9)
        dispatcher = Dispatcher(
            store,
            notifier(port),
            clock=clock,
            max_attempts=3,
            backoff=Backoff(base=timedelta(seconds=10), factor=2),
        )
        assert dispatcher.run().retried == (KEY,)
        clock.advance(timedelta(seconds=10))
        assert dispatcher.run().retried == (KEY,)
        clock.advance(timedelta(seconds=20))
        assert dispatcher.run().dead == (KEY,)
        (dead,) = dispatcher.dead_letters()
        assert (dead.state, dead.attempts) == (OutboxState.DEAD, 3)
        assert dead.last_error is not None
        assert "SMTPDataError" in dead.last_error
        assert "550" in dead.last_error
        # The server comes back: a re-queued message is delivered.
        sink.refuse = None
        dispatcher.requeue(KEY)
        assert dispatcher.run().delivered == (KEY,)
        assert len(sink.received) == 1
    finally:
        controller.stop()


def test_no_server_listening_is_a_retried_failure() -> None:
    store = open_store("memory://")
    outbox(store).put([OutboxMessage.new(request(), created_at=MON_9)])
    dispatcher = Dispatcher(store, notifier(_free_port()), clock=FixedClock(MON_9))
    assert dispatcher.run().retried == (KEY,)
    error = outbox(store).get(KEY).last_error
    assert error is not None
    assert "ConnectionRefusedError" in error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": ""}, "host=''"),
        ({"port": 0}, "port=0 is not a port number"),
        ({"port": True}, "port=True"),
        ({"security": "tls"}, "security='tls' is not one of"),
        ({"from_address": "desk"}, "from_address='desk' is not an email address"),
        ({"templates": {}}, "at least one"),
        ({"templates": {"page": "x"}}, r"templates\['page'\]='x' is not an EmailTemplate"),
        ({"username": "desk"}, "both username= and password="),
        ({"timeout": 0}, "timeout=0"),
        ({"address_of": "x"}, "address_of='x' is not callable"),
    ],
)
def test_smtp_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        notifier(**{"port": 25, **kwargs})


def test_smtp_default_ports() -> None:
    base: dict[str, Any] = {"host": "mail", "from_address": "a@b.c", "templates": TEMPLATES}
    assert "port=587" in repr(SmtpNotifier(**base))
    assert "port=465" in repr(SmtpNotifier(**base, security="ssl"))
    assert "port=25" in repr(SmtpNotifier(**base, security="none"))


def test_email_template_is_checked_when_built() -> None:
    with pytest.raises(TemplateError, match="not a plain name"):
        EmailTemplate(subject="{a.b}", body="")
    with pytest.raises(ValidationError, match="body=3"):
        EmailTemplate(subject="", body=3)  # type: ignore[arg-type]


def test_import_csmcore_loads_no_mail_modules() -> None:
    code = (
        "import sys, csmcore, csmcore.services; "
        "print(sorted(m for m in ('smtplib', 'aiosmtpd', 'ssl') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- TLS: STARTTLS and SSL against the same kind of server, with a certificate made here ------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI") == "true":  # CI has it: a missing one must not hide the tests
            pytest.fail("CI=true but the openssl command is not installed", pytrace=False)
        pytest.skip("the openssl command is not installed; the TLS tests need a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def test_smtp_starttls(certificate: tuple[str, str]) -> None:
    sink = Sink()
    port = _free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=_authenticate,
    )
    controller.start()
    try:
        trusted = ssl.create_default_context(cafile=certificate[0])
        notifier(
            port, security="starttls", ssl_context=trusted, username="desk", password="s3cret"
        ).deliver(request(), key=KEY, attempt=1)
        assert sink.received[0][2]["X-Csmcore-Idempotency-Key"] == KEY
        # Without TLS the server refuses the mail; an untrusted certificate fails the upgrade.
        import smtplib

        with pytest.raises(smtplib.SMTPException):
            notifier(port).deliver(request(), key=KEY, attempt=1)
        with pytest.raises(ssl.SSLError):
            notifier(port, security="starttls").deliver(request(), key=KEY, attempt=1)
        assert len(sink.received) == 1
    finally:
        controller.stop()


def test_smtp_ssl(certificate: tuple[str, str]) -> None:
    sink = Sink()
    port = _free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate)
    )
    controller.start()
    try:
        trusted = ssl.create_default_context(cafile=certificate[0])
        notifier(port, security="ssl", ssl_context=trusted).deliver(request(), key=KEY, attempt=1)
        assert sink.received[0][1] == ["manager@example.com"]
    finally:
        controller.stop()
