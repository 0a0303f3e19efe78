"""issue 14, the console's sign-in in the synthesized template: the user pool (administrators create the
users), its hosted login, the page's public app client, the JWT authorizer of the admin API's console
routes (every admin route mirrored, the IAM ones unchanged), the console function's environment and the
stack's outputs. Expectations come from the code (wiring, construct, shared.console), so the tests fail
when code and template disagree."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Stack

from infra.config import SIGN_IN_ENV, DeploymentConfig
from infra.constructs.console import ACCESS_TOKEN_MINUTES, GROUPS, REFRESH_TOKEN_HOURS, ConsoleSignIn
from infra.constructs.http_api import HttpApi
from infra.wiring import FUNCTIONS, function
from shared.admin import CONSOLE_PREFIX, ROUTES, console_route
from shared.console import ROUTE_SCOPE, SIGN_IN_SCOPES
from tests.conftest import resources
from tests.infra.test_template import lambda_for, policy_statements


def only(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = resources(template, kind).items()
    return found


def output(template: dict[str, Any], name: str) -> Any:
    return template["Outputs"][name]["Value"]


def api_url(api_logical: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "https://",
                {"Ref": api_logical},
                ".execute-api.",
                {"Ref": "AWS::Region"},
                ".",
                {"Ref": "AWS::URLSuffix"},
                "/",
            ],
        ]
    }


def test_the_user_pool_takes_users_an_administrator_creates_with_strong_passwords(template) -> None:
    logical, pool = only(template, "AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True, "no self sign-up"
    assert props["UsernameAttributes"] == ["email"], "the email address is the user name"
    assert props["UsernameConfiguration"] == {"CaseSensitive": False}
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[f"Require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols"))
    assert (props["MfaConfiguration"], props["EnabledMfas"]) == ("OPTIONAL", ["SOFTWARE_TOKEN_MFA"])
    assert props["UserPoolTier"] == "LITE", "no Plus plan (threat protection is priced per user)"
    assert "UserPoolAddOns" not in props
    # the users outlive the stack
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    assert props["DeletionProtection"] == "ACTIVE"
    # the invitation names the console, where the new user signs in
    invitation = json.dumps(props["AdminCreateUserConfig"]["InviteMessageTemplate"]["EmailMessage"])
    assert "{username}" in invitation and "{####}" in invitation
    (api_logical,) = resources(template, "AWS::ApiGatewayV2::Api")
    assert json.dumps(api_url(api_logical)["Fn::Join"][1][1]) in invitation
    groups = {
        g["Properties"]["GroupName"]: g["Properties"]
        for g in resources(template, "AWS::Cognito::UserPoolGroup").values()
    }
    assert set(groups) == set(GROUPS) == {"marketers", "sales"}
    assert all(g["UserPoolId"] == {"Ref": logical} for g in groups.values())


def test_the_hosted_login_has_a_prefix_domain_named_after_the_account(template) -> None:
    pool, _ = only(template, "AWS::Cognito::UserPool")
    domain_logical, domain = only(template, "AWS::Cognito::UserPoolDomain")
    assert domain["Properties"]["UserPoolId"] == {"Ref": pool}
    assert domain["Properties"]["Domain"] == {"Fn::Join": ["", ["lifecycle-", {"Ref": "AWS::AccountId"}]]}
    assert "CustomDomainConfig" not in domain["Properties"]
    assert output(template, "ConsoleSignInUrl") == {
        "Fn::Join": [
            "",
            ["https://", {"Ref": domain_logical}, ".auth.", {"Ref": "AWS::Region"}, ".amazoncognito.com"],
        ]
    }


def test_the_console_is_a_public_client_with_the_code_grant_and_short_lived_tokens(template) -> None:
    pool, _ = only(template, "AWS::Cognito::UserPool")
    _, client = only(template, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props["UserPoolId"] == {"Ref": pool}
    assert props["GenerateSecret"] is False, "a page keeps no secret: PKCE instead"
    assert props["AllowedOAuthFlows"] == ["code"] and props["AllowedOAuthFlowsUserPoolClient"] is True
    assert props["AllowedOAuthScopes"] == list(SIGN_IN_SCOPES) == ["openid", "email", "profile"]
    assert props["SupportedIdentityProviders"] == ["COGNITO"]
    # back to the console after signing in and out: its URL, exactly
    (api_logical,) = resources(template, "AWS::ApiGatewayV2::Api")
    assert props["CallbackURLs"] == props["LogoutURLs"] == [output(template, "ConsoleUrl")]
    assert output(template, "ConsoleUrl") == api_url(api_logical)
    units = props["TokenValidityUnits"]
    assert (props["AccessTokenValidity"], units["AccessToken"]) == (ACCESS_TOKEN_MINUTES, "minutes")
    assert (props["IdTokenValidity"], units["IdToken"]) == (ACCESS_TOKEN_MINUTES, "minutes")
    assert ACCESS_TOKEN_MINUTES <= 60
    assert (props["RefreshTokenValidity"], units["RefreshToken"]) == (REFRESH_TOKEN_HOURS * 60, "minutes")
    assert props["EnableTokenRevocation"] is True and props["PreventUserExistenceErrors"] == "ENABLED"
    assert "ALLOW_USER_PASSWORD_AUTH" not in props["ExplicitAuthFlows"]


def test_the_console_routes_accept_the_pools_access_tokens_for_the_console_client(template) -> None:
    pool, _ = only(template, "AWS::Cognito::UserPool")
    client, _ = only(template, "AWS::Cognito::UserPoolClient")
    (api_logical,) = resources(template, "AWS::ApiGatewayV2::Api")
    _, authorizer = only(template, "AWS::ApiGatewayV2::Authorizer")
    props = authorizer["Properties"]
    assert props["ApiId"] == {"Ref": api_logical}
    assert props["AuthorizerType"] == "JWT"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert props["JwtConfiguration"] == {
        "Issuer": {
            "Fn::Join": [
                "",
                ["https://cognito-idp.", {"Ref": "AWS::Region"}, ".amazonaws.com/", {"Ref": pool}],
            ]
        },
        # Cognito's access tokens carry the client id in client_id (no aud), which the authorizer checks
        "Audience": [{"Ref": client}],
    }


def test_every_admin_route_is_mirrored_for_the_console_and_the_iam_ones_are_unchanged(template) -> None:
    (authorizer,) = resources(template, "AWS::ApiGatewayV2::Authorizer")
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in resources(template, "AWS::ApiGatewayV2::Route").values()
    }
    jwt = {key for key, props in routes.items() if props["AuthorizationType"] == "JWT"}
    assert jwt == {console_route(key) for key in ROUTES}, "the console's copies, and nothing else"
    admin_target = None
    for key in ROUTES:
        iam, mirrored = routes[key], routes[console_route(key)]
        assert console_route(key) == key.replace(" /admin/", f" {CONSOLE_PREFIX}/admin/", 1)
        assert iam["AuthorizationType"] == "AWS_IAM"
        assert "AuthorizerId" not in iam and "AuthorizationScopes" not in iam
        assert mirrored["AuthorizerId"] == {"Ref": authorizer}
        # an access token (its scope), not an ID token: both carry the client id
        assert mirrored["AuthorizationScopes"] == [ROUTE_SCOPE] and ROUTE_SCOPE in SIGN_IN_SCOPES
        assert mirrored["Target"] == iam["Target"], "the same admin function serves both"
        admin_target = admin_target or iam["Target"]
        assert iam["Target"] == admin_target
    assert len(ROUTES) > 20


def test_the_console_function_is_told_where_to_sign_in_and_may_do_nothing_else(template) -> None:
    client, _ = only(template, "AWS::Cognito::UserPoolClient")
    props = lambda_for(template, "console")
    env = props["Environment"]["Variables"]
    assert env[SIGN_IN_ENV["sign_in_api_base"]] == CONSOLE_PREFIX == "/console"
    assert env[SIGN_IN_ENV["sign_in"]] == output(template, "ConsoleSignInUrl")
    assert env[SIGN_IN_ENV["sign_in_client"]] == {"Ref": client}
    assert set(SIGN_IN_ENV.values()) == {"CONSOLE_API_BASE", "CONSOLE_SIGN_IN_URL", "CONSOLE_CLIENT_ID"}
    # no other function is told of the sign-in
    for spec in FUNCTIONS:
        if spec.name != "console":
            assert not set(SIGN_IN_ENV.values()) & set(
                lambda_for(template, spec.name)["Environment"]["Variables"]
            )
    # its own logs and traces only: no table, queue, secret, service
    actions = {a for s in policy_statements(template, props) for a in s["Action"]}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert function("console").services == ("sign_in",)


def test_the_stack_outputs_the_console_its_users_and_its_login(template) -> None:
    pool, _ = only(template, "AWS::Cognito::UserPool")
    assert output(template, "ConsoleUserPoolId") == {"Ref": pool}
    assert "admin-create-user" in template["Outputs"]["ConsoleUserPoolId"]["Description"]
    assert {"ConsoleUrl", "ConsoleUserPoolId", "ConsoleSignInUrl"} <= set(template["Outputs"])


# --- the construct's settings, synthesized alone (quick): a chosen prefix, a public URL ------------------


def synth_console(**settings: Any) -> dict[str, Any]:
    app = cdk.App()
    stack = Stack(app, "Lifecycle")
    config = DeploymentConfig(**settings)
    ConsoleSignIn(stack, "Console", config=config, api=HttpApi(stack, "Http", config=config))
    return app.synth().get_stack_by_name("Lifecycle").template


def test_a_chosen_domain_prefix_and_a_public_url_are_used() -> None:
    template = synth_console(console_domain_prefix="acme-console", public_url="https://crm.acme.example/")
    assert only(template, "AWS::Cognito::UserPoolDomain")[1]["Properties"]["Domain"] == "acme-console"
    (api_logical,) = resources(template, "AWS::ApiGatewayV2::Api")
    client = only(template, "AWS::Cognito::UserPoolClient")[1]["Properties"]
    assert (
        client["CallbackURLs"] == client["LogoutURLs"] == [api_url(api_logical), "https://crm.acme.example/"]
    )


@pytest.mark.parametrize("prefix", ["Acme", "my-aws-console", "cognito-x", "-x", "a" * 64])
def test_a_domain_prefix_cognito_refuses_is_refused_before_deploying(prefix: str) -> None:
    with pytest.raises(ValueError, match="consoleDomainPrefix|console_domain_prefix|pattern"):
        DeploymentConfig.from_context({"consoleDomainPrefix": prefix})
