"""The one way code walks conditions: a :class:`ConditionVisitor` holds a handler per condition
class, found through the class's MRO, so a new kind of node registers its handlers (codec, SQL
push-down, ...) instead of every walker growing another ``isinstance`` branch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from csmcore._boundary import guard_class
from csmcore.errors import ValidationError

if TYPE_CHECKING:
    from csmcore.conditions._nodes import Condition

__all__ = ["ConditionVisitor"]

R = TypeVar("R")
H = TypeVar("H", bound=Callable[..., Any])


@guard_class
class ConditionVisitor(Generic[R]):
    """Handlers, one per condition class: ``visitor(node, *args)`` calls the handler registered
    for ``type(node)`` (or its nearest registered base class) as ``handler(node, *args)``.

    ``default(node, *args)`` handles classes with no handler; without one, such a node raises
    ``missing(node)`` (by default a ValidationError naming the visitor and the class).

    >>> from csmcore.conditions import Always, Condition, Never
    >>> describe = ConditionVisitor[str]("describe", default=lambda node: "something")
    >>> @describe.register(Always)
    ... def _(node: Condition) -> str:
    ...     return "everything"
    >>> describe(Always()), describe(Never())
    ('everything', 'something')
    """

    __slots__ = ("_cache", "_default", "_handlers", "_missing", "name")

    def __init__(
        self,
        name: str,
        *,
        default: Callable[..., R] | None = None,
        missing: Callable[[Condition], Exception] | None = None,
    ) -> None:
        self.name = name
        self._handlers: dict[type, Callable[..., R]] = {}
        self._cache: dict[type, Callable[..., R]] = {}
        self._default = default
        self._missing = missing

    def register(self, *classes: type) -> Callable[[H], H]:
        """Decorator: the handler of ``classes`` (and their subclasses without their own)."""

        def add(handler: H) -> H:
            for cls in classes:
                self._handlers[cls] = handler
            self._cache.clear()
            return handler

        return add

    def handler(self, cls: type) -> Callable[..., R]:
        """The handler for nodes of class ``cls``."""
        found = self._cache.get(cls)
        if found is not None:
            return found
        for base in cls.__mro__:
            found = self._handlers.get(base)
            if found is not None:
                break
        else:
            found = self._default if self._default is not None else self._refuse
        self._cache[cls] = found
        return found

    def _refuse(self, node: Condition, *args: Any) -> R:
        if self._missing is not None:
            raise self._missing(node)
        raise ValidationError(
            f"{self.name}: no handler for {type(node).__qualname__} ({node!r}); register one "
            f"with {self.name}.register({type(node).__name__})"
        )

    def __call__(self, node: Condition, *args: Any) -> R:
        cls = type(node)
        found = self._cache.get(cls)
        if found is None:
            found = self.handler(cls)
        return found(node, *args)
