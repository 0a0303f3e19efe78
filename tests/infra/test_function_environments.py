"""Each function's settings validate against exactly the environment its synthesized template gives it."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.gateway import load_handler
from infra.wiring import FUNCTIONS, FunctionSpec
from tests.conftest import lambda_environment, resources


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_settings_validate_against_the_functions_template_environment_alone(
    template: dict[str, Any], spec: FunctionSpec
) -> None:
    names = {logical: logical for logical in template["Resources"]}
    env = lambda_environment(template, spec, names)
    model = load_handler(spec.handler).settings_model
    model.model_validate(env)  # raises, naming the missing variable, if the template lacks one


def test_every_function_of_the_wiring_is_in_the_template(template: dict[str, Any]) -> None:
    handlers = {f["Properties"]["Handler"] for f in resources(template, "AWS::Lambda::Function").values()}
    assert handlers == {spec.handler for spec in FUNCTIONS}
