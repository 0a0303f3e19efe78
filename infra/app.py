"""CDK app entry point: ``python -m infra.app`` (or ``cdk synth``) writes cdk.out/ offline."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import DeploymentConfig
from infra.stack import LifecycleStack

STACK_NAME = "Lifecycle"


def build(context: dict | None = None, outdir: str | None = None) -> tuple[cdk.App, LifecycleStack]:
    app = cdk.App(context=context or {}, outdir=outdir)
    config = DeploymentConfig.from_context(app.node.try_get_context("lifecycle"))
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT") and os.environ.get("CDK_DEFAULT_REGION"):
        env = cdk.Environment(
            account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ["CDK_DEFAULT_REGION"]
        )
    stack = LifecycleStack(app, STACK_NAME, config=config, env=env)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> int:
    app, stack = build(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
    assembly = app.synth()
    errors = [m for m in assembly.get_stack_artifact(stack.artifact_id).messages if m.level.value == "error"]
    for message in errors:
        print(f"{message.id}: {message.entry.data}", file=sys.stderr)
    print(f"template: {assembly.directory}/{stack.template_file}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
