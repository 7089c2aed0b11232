"""Built-in notifiers: a function, Python logging, and email over SMTP (stdlib ``smtplib``).

``smtplib`` and ``email`` are imported when a mail is sent, not by ``import csmcore``.
"""

from __future__ import annotations

import hashlib
import logging
import string
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import attrs

from csmcore._boundary import exempt
from csmcore.errors import ValidationError, invalid_type
from csmcore.escalation import NotificationRequest
from csmcore.services._delivery import PermanentDeliveryError

__all__ = [
    "CallableNotifier",
    "EmailTemplate",
    "LoggingNotifier",
    "SmtpNotifier",
    "TemplateError",
    "render",
]


class TemplateError(PermanentDeliveryError, ValidationError):
    """A template that cannot be rendered: a malformed one, a field that is not a plain name,
    or a name the data does not hold. No retry cures it (a :class:`PermanentDeliveryError`);
    raised when a notifier is built, it is the :class:`~csmcore.errors.ValidationError` of a
    bad argument."""


_FORMATTER: Final = string.Formatter()


def _fields(template: str) -> list[tuple[str, str | None]]:
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as err:
        raise TemplateError(f"template {template!r} is malformed: {err}") from None
    out: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is not None:
            if not field.isidentifier():
                raise TemplateError(
                    f"template field {{{field}}} is not a plain name; write {{name}} with a "
                    "name of the data (no attributes, indexes or positions)"
                )
            if spec or conversion:
                raise TemplateError(
                    f"template field {{{field}}} has a conversion or format spec; write "
                    f"{{{field}}} only"
                )
        out.append((literal, field))
    return out


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` fields of ``template`` with ``str(values[name])``; ``{{`` and ``}}``
    are literal braces. Nothing is evaluated: attribute and index access, positional fields,
    conversions and format specs are refused. Raises :class:`TemplateError` naming a field
    ``values`` lacks, and the names it has.

    >>> render("Ticket {ticket_id} is at {percent} %", {"ticket_id": "T-1", "percent": 75})
    'Ticket T-1 is at 75 %'
    >>> render("{ticket.__class__}", {"ticket": 1})
    Traceback (most recent call last):
    ...
    csmcore.services.TemplateError: template field {ticket.__class__} is not a plain name; ...
    >>> render("{missing}", {"ticket_id": "T-1"})
    Traceback (most recent call last):
    ...
    csmcore.services.TemplateError: template field {missing} is not in the data; known: [...]
    """
    if not isinstance(template, str):
        raise invalid_type("template", template, "a str")
    if not isinstance(values, Mapping):
        raise invalid_type("values", values, "a mapping of field name to value")
    parts: list[str] = []
    for literal, field in _fields(template):
        parts.append(literal)
        if field is not None:
            if field not in values:
                raise TemplateError(
                    f"template field {{{field}}} is not in the data; known: {sorted(values)}"
                )
            value = values[field]
            parts.append("" if value is None else str(value))
    return "".join(parts)


def template_values(request: NotificationRequest, key: str) -> dict[str, Any]:
    """What a template can name: the request's ``data`` and ``channel``, ``recipient``,
    ``template``, ``ticket_id``, ``not_before`` (ISO text) and ``idempotency_key``."""
    return {
        **request.data,
        "channel": request.channel,
        "recipient": request.recipient,
        "template": request.template,
        "ticket_id": request.ticket_id,
        "not_before": request.not_before.isoformat(),
        "idempotency_key": key,
    }


class CallableNotifier:
    """A notifier that calls ``function(request, key)``; whatever it raises fails the attempt.

    >>> from datetime import datetime, timezone
    >>> from csmcore.escalation import NotificationRequest
    >>> seen = []
    >>> notifier = CallableNotifier(lambda request, key: seen.append(key))
    >>> request = NotificationRequest(channel="chat", recipient="ops", template="t", data={},
    ...     not_before=datetime(2025, 1, 6, tzinfo=timezone.utc), idempotency_key="k/0",
    ...     ticket_id="T-1")
    >>> notifier.deliver(request, key="k/0", attempt=1)
    >>> seen
    ['k/0']
    """

    __slots__ = ("_function",)

    def __init__(self, function: Callable[[NotificationRequest, str], object]) -> None:
        if not callable(function):
            raise ValidationError(f"function={function!r} is not callable")
        self._function = function

    @exempt("a notifier's failures are the dispatcher's to classify and retry, as raised")
    def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
        """Call the function."""
        self._function(request, key)

    def __repr__(self) -> str:
        return f"CallableNotifier({self._function!r})"


class LoggingNotifier:
    """A notifier that writes one log record per delivery to the logger ``logger`` at
    ``level``. The record's ``extra`` carries the notification as fields: ``csm_key``,
    ``csm_channel``, ``csm_recipient``, ``csm_template``, ``csm_ticket_id``, ``csm_attempt``
    and ``csm_data`` (a dict), for structured log handlers.
    ``message`` (default: a summary line) is rendered like an email template."""

    __slots__ = ("_level", "_logger", "_message")

    def __init__(
        self,
        logger: str | logging.Logger = "csmcore.notifications",
        *,
        level: int | str = logging.INFO,
        message: str = "notification {template} to {recipient} for ticket {ticket_id}",
    ) -> None:
        if isinstance(logger, str):
            logger = logging.getLogger(logger)
        if not isinstance(logger, logging.Logger):
            raise ValidationError(f"logger={logger!r} is not a logger name or a logging.Logger")
        if isinstance(level, str):
            named = logging.getLevelName(level.upper())
            if not isinstance(named, int):
                raise ValidationError(
                    f"level={level!r} is not a logging level; e.g. 'INFO', 'WARNING' or 20"
                )
            level = named
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValidationError(f"level={level!r} is not a logging level")
        _fields(message)  # refuses a malformed message now, not at the first delivery
        self._logger = logger
        self._level = level
        self._message = message

    @exempt("a notifier's failures are the dispatcher's to classify and retry, as raised")
    def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
        """Log the notification."""
        text = render(self._message, template_values(request, key))
        self._logger.log(
            self._level,
            "%s",
            text,
            extra={
                "csm_key": key,
                "csm_channel": request.channel,
                "csm_recipient": request.recipient,
                "csm_template": request.template,
                "csm_ticket_id": request.ticket_id,
                "csm_attempt": attempt,
                "csm_data": dict(request.data),
            },
        )

    def __repr__(self) -> str:
        return f"LoggingNotifier({self._logger.name!r}, level={self._level})"


def _template_text(name: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str):
            raise ValidationError(f"{name}={value!r} is not a string")
        _fields(value)

    return check


@attrs.frozen(kw_only=True)
class EmailTemplate:
    """The subject and plain-text body of an email, with ``{name}`` fields (see
    :func:`render`); checked when built."""

    subject: str = attrs.field(validator=_template_text("subject"))
    body: str = attrs.field(validator=_template_text("body"))


Security = Literal["none", "starttls", "ssl"]

IDEMPOTENCY_HEADER: Final = "X-Csmcore-Idempotency-Key"
"""The header of an email that carries the notification's idempotency key."""


class SmtpNotifier:
    """Email over SMTP with the standard library's ``smtplib``: one connection per mail.

    ``templates`` maps a request's ``template`` name to an :class:`EmailTemplate`; the
    fields read the request's data and the values :func:`template_values` adds. The
    recipient is ``address_of(request.recipient)`` (default: the recipient itself, which
    must then look like an address). ``security`` is ``"none"``, ``"starttls"`` (upgrade
    after connecting; the default port 587) or ``"ssl"`` (TLS from the start; port 465);
    ``ssl_context`` defaults to ``ssl.create_default_context()``. ``username`` and
    ``password`` log in when given. ``timeout`` (seconds) bounds each network operation:
    keep the dispatcher's lease longer than a mail can take.

    Each mail carries the idempotency key in the header ``X-Csmcore-Idempotency-Key`` and
    a ``Message-ID`` derived from it (the same on every attempt), so a receiving system that
    drops duplicate Message-IDs sees the notification once.

    An unknown template, a template field the data lacks, or a recipient that is no address
    raise :class:`~csmcore.services.PermanentDeliveryError` (no retry); anything the server
    or the network refuses raises the ``smtplib`` / ``OSError`` exception (retried).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int | None = None,
        from_address: str,
        templates: Mapping[str, EmailTemplate],
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: Any = None,
        address_of: Callable[[str], str] | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValidationError(f"host={host!r} is not a host name")
        if security not in ("none", "starttls", "ssl"):
            raise ValidationError(f"security={security!r} is not one of 'none', 'starttls', 'ssl'")
        if port is None:
            port = {"none": 25, "starttls": 587, "ssl": 465}[security]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValidationError(f"port={port!r} is not a port number (1-65535)")
        if not _looks_like_address(from_address):
            raise ValidationError(f"from_address={from_address!r} is not an email address")
        if not isinstance(templates, Mapping) or not templates:
            raise ValidationError("templates= needs at least one name -> EmailTemplate")
        for name, template in templates.items():
            if not isinstance(template, EmailTemplate):
                raise ValidationError(f"templates[{name!r}]={template!r} is not an EmailTemplate")
        if (username is None) != (password is None):
            raise ValidationError("give both username= and password=, or neither")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError(f"timeout={timeout!r} is not a positive number of seconds")
        if address_of is not None and not callable(address_of):
            raise ValidationError(f"address_of={address_of!r} is not callable")
        self._host = host
        self._port = port
        self._from = from_address
        self._templates = dict(templates)
        self._security = security
        self._username = username
        self._password = password
        self._timeout = float(timeout)
        self._ssl_context = ssl_context
        self._address_of = address_of
        self._local_hostname = local_hostname

    def message(self, request: NotificationRequest, *, key: str) -> Any:
        """The ``email.message.EmailMessage`` that :meth:`deliver` sends for ``request``."""
        from email.message import EmailMessage

        template = self._templates.get(request.template)
        if template is None:
            raise TemplateError(
                f"template {request.template!r} is not configured; known: {sorted(self._templates)}"
            )
        values = template_values(request, key)
        address = (
            request.recipient if self._address_of is None else self._address_of(request.recipient)
        )
        if not _looks_like_address(address):
            raise PermanentDeliveryError(
                f"recipient {request.recipient!r} gives {address!r}, not an email address; "
                "map names to addresses with address_of="
            )
        subject = render(template.subject, values)
        mail = EmailMessage()
        mail["From"] = self._from
        mail["To"] = address
        mail["Subject"] = " ".join(subject.split())  # no header folding from the data
        mail["Message-ID"] = message_id(key, self._from)
        mail[IDEMPOTENCY_HEADER] = key
        mail.set_content(render(template.body, values))
        return mail

    @exempt("a notifier's failures are the dispatcher's to classify and retry, as raised")
    def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
        """Send the mail; raises what ``smtplib`` raises when the server refuses it."""
        import smtplib
        import ssl

        mail = self.message(request, key=key)
        context = self._ssl_context
        if context is None and self._security != "none":
            context = ssl.create_default_context()
        client: smtplib.SMTP
        if self._security == "ssl":
            client = smtplib.SMTP_SSL(
                self._host,
                self._port,
                timeout=self._timeout,
                context=context,
                local_hostname=self._local_hostname,
            )
        else:
            client = smtplib.SMTP(
                self._host, self._port, timeout=self._timeout, local_hostname=self._local_hostname
            )
        with client:
            if self._security == "starttls":
                client.starttls(context=context)
            if self._username is not None and self._password is not None:
                client.login(self._username, self._password)
            client.send_message(mail)

    def __repr__(self) -> str:
        return f"SmtpNotifier(host={self._host!r}, port={self._port}, security={self._security!r})"


def message_id(key: str, from_address: str) -> str:
    """The Message-ID of the mail for idempotency key ``key``: a hash of the key at the
    sender's domain, the same on every attempt.

    >>> message_id('["r",1,0,"T-1","first_reply",1]/0', "desk@example.com")
    '<csmcore.740d6ffa96887c8ecefebb7b6f03bc11@example.com>'
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    domain = from_address.rpartition("@")[2].strip(">").strip() or "csmcore.invalid"
    return f"<csmcore.{digest}@{domain}>"


def _looks_like_address(value: object) -> bool:
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        return False
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain and ("." in domain or domain == "localhost"))
