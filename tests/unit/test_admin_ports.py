"""The admin API reaches stores only through ports, and the DynamoDB adapters keep those ports."""

from __future__ import annotations

import inspect
import typing

import pytest

from shared.adapters.engagement_config import DynamoEngagementConfig
from shared.admin.dependencies import Admin, FunnelRepository, SalesTeam


def members(protocol: type) -> dict[str, inspect.Signature]:
    names = {
        name
        for klass in protocol.__mro__
        if typing.Protocol in klass.__bases__ or getattr(klass, "_is_protocol", False)
        for name, value in vars(klass).items()
        if callable(value) and not name.startswith("_")
    }
    return {name: inspect.signature(getattr(protocol, name)) for name in names}


@pytest.mark.parametrize("port", [FunnelRepository, SalesTeam])
def test_the_config_adapter_keeps_the_admin_ports(port: type) -> None:
    declared = members(port)
    assert declared, f"{port.__name__} declares no methods"
    for name, signature in declared.items():
        implemented = inspect.signature(getattr(DynamoEngagementConfig, name))
        assert list(implemented.parameters) == list(signature.parameters), f"{port.__name__}.{name}"


def test_admin_depends_on_ports_not_on_concrete_stores() -> None:
    hints = typing.get_type_hints(Admin)
    concrete = {name: hint for name, hint in hints.items() if hint.__module__.startswith("shared.adapters")}
    assert not concrete, f"admin fields typed with adapters: {concrete}"
    assert "funnel" in members(hints["funnels"]) and "stored_funnel" in members(hints["funnels"])
    assert "salespeople" in members(hints["team"])
