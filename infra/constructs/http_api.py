"""The public HTTP API: one API and stage; each capability adds its functions' routes (write key or IAM)."""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import DeploymentConfig
from infra.wiring import CORS, FunctionSpec
from shared.console import ROUTE_SCOPE

#: Access log fields: enough to trace a request and who made it, nothing personal (no source IP, no user
#: agent). The caller is the signed-in console user's pseudonymous Cognito id (the JWT subject) or the
#: IAM caller's ARN (SigV4); either is "-" on routes that have no such caller.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTimeEpoch",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "latencyMs": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "responseLength": "$context.responseLength",
    "userSub": "$context.authorizer.claims.sub",
    "callerArn": "$context.identity.userArn",
}


#: How each function with public routes (no IAM) authenticates its callers itself.
PUBLIC_ROUTE_AUTHENTICATION = {
    "tracking": "Tracking routes authenticate each request with a Segment write key (HTTP Basic or body "
    "writeKey), checked by the tracking function; SDKs cannot sign requests.",
    "preferences": "Unsubscribe and confirmation links are opened by recipients from their mail client: "
    "each request carries a signed, expiring token (HMAC-SHA256 with the delivery secret) that the "
    "preferences function checks; a GET only shows a page, a POST changes consent.",
    "console": "The console's page, scripts and styles are public files, as any site's are; every piece of "
    "data it shows comes from admin routes, which require a signed-in user.",
}


class HttpApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name="lifecycle",
            description="Lifecycle: Segment-compatible tracking and admin API",
            create_default_stage=False,
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=list(config.cors_origins),
                allow_headers=list(CORS.allow_headers),
                allow_methods=[apigw.CorsHttpMethod[m] for m in CORS.allow_methods],
                expose_headers=list(CORS.expose_headers),
                max_age=Duration.seconds(CORS.max_age_seconds),
            ),
        )
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttle_rate, burst_limit=config.throttle_burst
            ),
        )
        cfn_stage: apigw.CfnStage = self.stage.node.default_child  # type: ignore[assignment]
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )
        self._iam_authorizer = authorizers.HttpIamAuthorizer()
        #: issue 14: the console's sign-in (``infra.constructs.console``), for the routes whose auth is "jwt"
        self._jwt_authorizer: apigw.IHttpRouteAuthorizer | None = None

    def accept_console_sign_in(self, authorizer: apigw.IHttpRouteAuthorizer) -> None:
        """issue 14: the JWT authorizer of the routes the console's signed-in users call (before they are
        added)."""
        self._jwt_authorizer = authorizer

    def _authorizer(self, spec: FunctionSpec, auth: str) -> apigw.IHttpRouteAuthorizer | None:
        if auth == "iam":
            return self._iam_authorizer
        if auth == "jwt":
            if self._jwt_authorizer is None:
                raise ValueError(f"{spec.name}: routes for the console's sign-in, but the stack has none")
            return self._jwt_authorizer
        return None

    def add_function_routes(self, spec: FunctionSpec, function: lambda_.IFunction) -> None:
        """The routes a function's wiring declares: write-key auth in the function, IAM (SigV4), or the
        console's sign-in (a Cognito access token)."""
        if not spec.routes:
            return
        integration = integrations.HttpLambdaIntegration(
            f"{spec.name.capitalize()}Integration",
            function,
            payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
            # One invoke permission per function (source: any route and stage of this API), not one per
            # route: with one per route the admin routes, mirrored under /console/admin, took the stack
            # near CloudFormation's 500-resource limit. The routes a function answers are still only
            # those its wiring declares.
            scope_permission_to_route=False,
        )
        for route in spec.routes:
            created = self.api.add_routes(
                path=route.path,
                methods=[apigw.HttpMethod[route.method]],
                integration=integration,
                authorizer=self._authorizer(spec, route.auth),
                # issue 14: an access token, not an ID token (which carries no scope)
                authorization_scopes=[ROUTE_SCOPE] if route.auth == "jwt" else None,
            )
            if route.auth == "none":
                for r in created:
                    Validations.of(r).acknowledge(
                        Acknowledgment(
                            id="AwsSolutions-APIG4",
                            reason=PUBLIC_ROUTE_AUTHENTICATION[spec.name],
                        )
                    )

    @property
    def url(self) -> str:
        return self.stage.url
