"""The roles a store offers (:class:`RoleTests`): every required role, each one satisfying its
protocol, in the store and in its units of work."""

from __future__ import annotations

import pytest

from csmcore.errors import UnsupportedRole
from csmcore.storage.protocols import Store
from csmcore.storage.roles import offered_roles, role_of, storage_role, storage_roles
from csmcore.testing.storage_suite._base import StoreFixtures


class RoleTests(StoreFixtures):
    """What a store says about its roles (its ``roles`` attribute, or none) is true."""

    def test_offers_every_required_role(self, store: Store) -> None:
        required = {r.name for r in storage_roles() if r.required}
        missing = sorted(required - offered_roles(store))
        assert not missing, f"{type(store).__name__} must offer the required roles {missing}"

    def test_each_offered_role_satisfies_its_protocol(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            handles = {"store": store, "unit of work": uow}
            for where, handle in handles.items():
                for name in sorted(offered_roles(handle)):
                    role = storage_role(name)
                    found = role_of(handle, name)
                    assert isinstance(found, role.protocol), (
                        f"{where}.{name} is a {type(found).__name__}, which does not satisfy "
                        f"{role.protocol.__qualname__}"
                    )

    def test_a_role_it_does_not_offer_raises_unsupported_role(self, store: Store) -> None:
        others = [r.name for r in storage_roles() if r.name not in offered_roles(store)]
        for name in others:
            with pytest.raises(UnsupportedRole, match=repr(name)):
                role_of(store, name)
