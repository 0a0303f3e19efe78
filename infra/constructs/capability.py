"""One construct per capability: the functions the wiring assigns to it, with their routes and triggers.

Ingest, engagement, automation and admin today; delivery and analytics each become one more
capability in ``infra.wiring.CAPABILITIES`` and one more instance here, without touching the others.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import Platform, WiredFunction
from infra.wiring import FUNCTIONS
from infra.wiring import Capability as CapabilityName


class Capability(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, name: CapabilityName, platform: Platform
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self.wired: dict[str, WiredFunction] = {}
        for spec in FUNCTIONS:
            if spec.capability != name:
                continue
            wired = WiredFunction(self, _pascal(spec.name), spec=spec, platform=platform)
            platform.api.add_function_routes(spec, wired.function)
            self.wired[spec.name] = wired

    @property
    def functions(self) -> dict[str, lambda_.Function]:
        return {name: wired.function for name, wired in self.wired.items()}

    @property
    def dead_letters(self) -> dict[str, sqs.Queue]:
        return {name: w.dead_letters for name, w in self.wired.items() if w.dead_letters is not None}


def _pascal(name: str) -> str:
    return name.title().replace("_", "")
