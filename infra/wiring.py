"""Which function is triggered by what, with which access: declared once.

The CDK stack (``infra.stack``) and the local stack (``infra.local``) both read
this module, so the cloud and the laptop cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from shared.adapters.tables import CONFIG, CONTACTS, EVENTS, TABLES, TableSpec
from shared.admin import ROUTES as ADMIN_ROUTES
from shared.tracking.messages import TRACKING_PATHS

__all__ = ["FUNCTIONS", "TABLES", "CORS", "FunctionSpec", "HttpRoute", "TableAccess", "Cors", "function"]


@dataclass(frozen=True, slots=True)
class HttpRoute:
    method: str
    path: str
    #: "iam": SigV4-signed callers only in the cloud, loopback callers only locally
    auth: Literal["none", "iam"] = "none"

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class TableAccess:
    table: TableSpec
    actions: tuple[str, ...]
    #: grant the actions on the table's indexes too (Query by index)
    indexes: bool = False


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    #: "package.module.function", importable from the project root
    handler: str
    description: str
    routes: tuple[HttpRoute, ...] = ()
    tables: tuple[TableAccess, ...] = ()
    memory_mb: int = 512
    timeout_seconds: int = 10
    #: settings beyond table names, by environment variable
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cors:
    """Browser access to the HTTP API. ``authorization`` is listed explicitly: ``*`` never covers it."""

    allow_headers: tuple[str, ...] = ("authorization", "content-type", "content-encoding")
    allow_methods: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE", "OPTIONS")
    max_age_seconds: int = 86400


CORS = Cors()

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        name="tracking",
        handler="functions.tracking.handler.handler",
        description="Segment-compatible tracking endpoint: records behaviour events exactly once",
        routes=tuple(HttpRoute("POST", path) for path in TRACKING_PATHS),
        tables=(
            TableAccess(CONTACTS, ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem")),
            TableAccess(
                EVENTS, ("dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
            ),
            TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query")),
        ),
    ),
    FunctionSpec(
        name="admin",
        handler="functions.admin.handler.handler",
        description="Admin API: contact cards, score ledgers and scoring rules",
        routes=tuple(HttpRoute(*key.split(" ", 1), auth="iam") for key in ADMIN_ROUTES),
        tables=(
            TableAccess(CONTACTS, ("dynamodb:GetItem",)),
            TableAccess(EVENTS, ("dynamodb:Query",), indexes=True),
            TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem")),
        ),
    ),
)


def function(name: str) -> FunctionSpec:
    return next(f for f in FUNCTIONS if f.name == name)
