"""Pluggable storage: open any store by URL.

>>> from csmcore.conditions import Always
>>> from csmcore.storage import open_store
>>> store = open_store("memory://")
>>> store.tickets.count(Always())
0
>>> store.close()

Built in:

- ``memory://``: in this process's memory (the default and the reference adapter).
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``: a SQLite file (stdlib
  ``sqlite3``, WAL, durable commits, safe with several processes writing the same file).
- ``postgresql://user@host:5432/db`` (also ``postgres://``): PostgreSQL through psycopg 3 and a
  connection pool; needs ``pip install 'csmcore[postgres]'``. Add ``?schema=name`` to keep the
  tables in a schema of their own (created when missing).

Each store offers storage roles (``tickets``, ``calendars``, ``policies``, ``rules`` and, in later
releases, optional ones); :mod:`csmcore.storage.roles` declares them and :func:`role_of` finds
one. Adapters build on :mod:`csmcore.storage.base`.

Third-party adapters register an opener, a callable ``(url: str) -> Store``, under the entry-point
group ``csmcore.storage`` with the URL scheme as its name, or at run time with
:func:`register_adapter` (undone with :func:`unregister_adapter`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from csmcore._boundary import guarded
from csmcore.errors import StorageError, ValidationError
from csmcore.storage.protocols import (
    PLAN_BASIS_KEY,
    CalendarRepository,
    FiringRecord,
    FiringRepository,
    LatestVersions,
    OutboxMessage,
    OutboxPaging,
    OutboxRepository,
    OutboxState,
    PlanBasis,
    PolicyRepository,
    RuleRepository,
    Store,
    TicketPlan,
    TicketRepository,
    TicketsByRequester,
    UnitOfWork,
    Versioned,
    VersionedRepository,
)
from csmcore.storage.roles import StorageRole, declare_role, offered_roles, role_of

from csmcore.storage.ledger import LedgerRepository  # declares the optional "ledger" role  # isort: skip

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLAN_BASIS_KEY",
    "CalendarRepository",
    "FiringRecord",
    "FiringRepository",
    "LatestVersions",
    "LedgerRepository",
    "OutboxMessage",
    "OutboxPaging",
    "OutboxRepository",
    "OutboxState",
    "PlanBasis",
    "PolicyRepository",
    "RuleRepository",
    "StorageRole",
    "Store",
    "StoreOpener",
    "TicketPlan",
    "TicketRepository",
    "TicketsByRequester",
    "UnitOfWork",
    "Versioned",
    "VersionedRepository",
    "available_schemes",
    "declare_role",
    "offered_roles",
    "open_store",
    "register_adapter",
    "role_of",
    "unregister_adapter",
]

ENTRY_POINT_GROUP = "csmcore.storage"
"""Entry-point group under which third-party adapters register their opener by URL scheme."""

StoreOpener = Callable[[str], Store]
"""An adapter's opener: takes the full URL, returns an open store."""

_registered: dict[str, StoreOpener] = {}
_lock = threading.Lock()


def _open_memory(url: str) -> Store:
    from csmcore.storage.memory import MemoryStore

    return MemoryStore()


def _open_sqlite(url: str) -> Store:
    from csmcore.storage.sqlite import SqliteStore

    return SqliteStore.from_url(url)


def _open_postgres(url: str) -> Store:
    try:
        from csmcore.storage.postgres import PostgresStore
    except ImportError as err:
        raise StorageError(
            f"the PostgreSQL adapter needs psycopg 3 and psycopg_pool ({err}); "
            "install them with: pip install 'csmcore[postgres]'"
        ) from err
    return PostgresStore.from_url(url)


_BUILTIN: dict[str, StoreOpener] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


@guarded
def register_adapter(scheme: str, opener: StoreOpener) -> None:
    """Make ``open_store`` use ``opener`` for URLs with ``scheme`` (in this process only).

    Registering a scheme again replaces its opener; a scheme registered here wins over an
    entry point of the same name. :func:`unregister_adapter` removes a registration (and
    returns its opener, so that a test can put back what it replaced). Prefer the
    ``csmcore.storage`` entry point for adapters you distribute: other processes see it too.
    Raises :class:`~csmcore.errors.ValidationError` for a scheme that is not a lower-case URL
    scheme or that names a built-in adapter.
    """
    if not isinstance(scheme, str) or not scheme.isascii() or not scheme.islower():
        raise ValidationError(f"scheme={scheme!r} is not a lower-case URL scheme such as 'mydb'")
    if scheme in _BUILTIN:
        raise ValidationError(f"scheme={scheme!r} is built in; choose another scheme")
    if not callable(opener):
        raise ValidationError(f"opener={opener!r} is not callable; expected (url) -> Store")
    with _lock:
        _registered[scheme] = opener


@guarded
def unregister_adapter(scheme: str) -> StoreOpener:
    """Undo :func:`register_adapter` for ``scheme`` (in this process) and return the opener it
    had; ``open_store`` then refuses the scheme again, or opens it with the entry point of
    that name when an installed package declares one.

    >>> from csmcore.storage.memory import MemoryStore
    >>> register_adapter("undone", lambda url: MemoryStore())
    >>> _ = unregister_adapter("undone")
    >>> "undone" in available_schemes()
    False

    Raises :class:`~csmcore.errors.ValidationError` naming the schemes registered at run time
    for a scheme that is not one of them: a built-in scheme (they cannot be removed), a scheme
    that only an entry point declares (uninstall its package instead), or an unknown one.
    """
    with _lock:
        if isinstance(scheme, str) and scheme in _registered:
            return _registered.pop(scheme)
        registered = sorted(_registered)
    if isinstance(scheme, str) and scheme in _BUILTIN:
        raise ValidationError(
            f"scheme={scheme!r} is built in and cannot be unregistered; the schemes registered "
            f"at run time are {registered}"
        )
    why = ""
    if isinstance(scheme, str) and scheme in _entry_point_openers():
        why = (
            f" (an installed package declares it under the entry-point group "
            f"{ENTRY_POINT_GROUP!r}; uninstall the package to remove it)"
        )
    raise ValidationError(
        f"scheme={scheme!r} is not registered at run time{why}; registered: {registered}"
    )


def _entry_point_openers() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_schemes() -> list[str]:
    """Every URL scheme ``open_store`` accepts now: built in, registered and entry points."""
    return sorted(set(_BUILTIN) | set(_registered) | set(_entry_point_openers()))


def _url_part(url: str, index: int) -> str:
    """The name of the part of ``url`` that holds the character at ``index``."""
    scheme_end = url.find("://")
    if index < scheme_end:
        return "scheme"
    before = url[:index]
    if "#" in before:
        return "fragment"
    if "?" in before:
        return "query"
    netloc = url[scheme_end + 3 :]
    for stop in "/?#":
        netloc = netloc.split(stop, 1)[0]
    if index < scheme_end + 3 + len(netloc):
        return "user, password, host or port"
    return "path (file or database name)"


def _check_url_text(url: str) -> None:
    """Refuse a NUL or a lone surrogate anywhere in ``url`` (no driver can take them: SQLite
    refuses the path, libpq cuts a name at the NUL)."""
    for index, char in enumerate(url):
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            what = "a NUL character" if char == "\x00" else f"the lone surrogate {char!r}"
            raise ValidationError(
                f"url={url!r} holds {what} at index {index}, in its {_url_part(url, index)}; "
                "a store URL must be text without NUL or surrogate characters"
            )


@guarded
def open_store(url: str = "memory://") -> Store:
    """Open (and create or migrate when needed) the store at ``url``.

    Raises :class:`~csmcore.errors.ValidationError` for a URL with an unknown scheme (the
    message lists the known ones), :class:`~csmcore.errors.StorageError` when the adapter's
    driver is not installed (with the ``pip install`` hint) or the backend cannot be opened, and
    :class:`~csmcore.errors.SchemaVersionError` for a store written by a newer csmcore.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            f"url={url!r} is not a store URL; expected for example 'memory://', "
            "'sqlite:///tickets.db' or 'postgresql://user@host/db'"
        )
    _check_url_text(url)
    scheme = urlsplit(url).scheme.lower()
    opener = _BUILTIN.get(scheme) or _registered.get(scheme)
    if opener is None:
        found = _entry_point_openers().get(scheme)
        if found is None:
            raise ValidationError(
                f"url={url!r} has the unknown scheme {scheme!r}; known schemes: "
                f"{', '.join(available_schemes())} (adapters register under the entry-point "
                f"group {ENTRY_POINT_GROUP!r})"
            )
        try:
            opener = found.load()
        except ImportError as err:
            raise StorageError(
                f"the storage adapter for {scheme!r} ({found.value}) cannot be imported: {err}; "
                "is its package (and its driver) installed?"
            ) from err
    assert opener is not None
    return opener(url)
