"""issue 14: the console's sign-in in the cloud: a Cognito user pool, its hosted login and the page's app client.

Administrators create the users (no self sign-up; the email address is the user name). The console's page
signs in with the OAuth 2.0 authorization code grant and PKCE at the hosted login, as a public client (no
secret: a page keeps none), and calls the admin API's ``/console/admin/...`` routes with the access token,
which the API's JWT authorizer checks (``infra.constructs.http_api``). Locally none of this exists: the
admin API answers loopback callers only.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.http_api import HttpApi
from shared.admin import CONSOLE_PREFIX
from shared.console import SIGN_IN_SCOPES

#: Groups an administrator puts users in, for the people who use the console. The access token names them
#: (``cognito:groups``) and the admin function decides by them (``shared.admin.access``); a user in
#: neither group may sign in but do nothing.
GROUPS = {
    "marketers": "Marketers: every console screen and change (contacts, rules, funnel, automations, campaigns...)",
    "sales": "Salespeople: read contacts and leads, accept leads, tag contacts",
}
#: A signed-in page calls the API with tokens this short-lived, refreshed while the working day lasts.
ACCESS_TOKEN_MINUTES = 15
REFRESH_TOKEN_HOURS = 8


def default_domain_prefix(stack: Stack) -> str:
    """``lifecycle-<account id>``: prefixes are unique per region, one stack per account and region."""
    return f"{stack.stack_name.lower()}-{stack.account}"


class ConsoleSignIn(Construct):
    """The user pool, its hosted login domain and the console's app client; the authorizer the admin API's
    console routes use; ``names``, what the console function is told (``infra.config.SIGN_IN_ENV``)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, api: HttpApi
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        #: where the console is: the API's own URL, and the public URL where one fronts the API
        self.url = f"{config.public_url.rstrip('/')}/" if config.public_url else api.url
        urls = [api.url, *([self.url] if config.public_url else [])]
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # the classic hosted login, TOTP and a handful of users: nothing the Lite plan lacks
            feature_plan=cognito.FeaturePlan.LITE,
            user_invitation=cognito.UserInvitationConfig(
                email_subject="Your Lifecycle console account",
                email_body="You can now sign in to the Lifecycle console at "
                + self.url
                + " as {username} with the temporary password {####} (valid 3 days; you choose your own "
                "at the first sign-in).",
            ),
            deletion_protection=True,
            # the users outlive the stack: deleting it must not lock everyone out of a redeployment
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.user_pool).acknowledge(
            Acknowledgment(
                id="AwsSolutions-COG2",
                reason="MFA is optional (TOTP): each user may turn it on; requiring it would block the first "
                "sign-in of users an administrator creates until they set up an authenticator app.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG8",
                reason="The Plus plan's threat protection is priced per active user on top of the pool; the "
                "console has few users, all created by an administrator, with a strong password policy.",
            ),
        )
        for name, description in GROUPS.items():
            cognito.CfnUserPoolGroup(
                self,
                f"{name.title()}Group",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=name,
                description=description,
            )
        self.domain = self.user_pool.add_domain(
            "Login",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=config.console_domain_prefix or default_domain_prefix(stack)
            ),
        )
        self.client = self.user_pool.add_client(
            "Console",
            user_pool_client_name="console",
            generate_secret=False,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.custom(scope) for scope in SIGN_IN_SCOPES],
                callback_urls=urls,
                logout_urls=urls,
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            auth_flows=cognito.AuthFlow(user_srp=True),
            access_token_validity=Duration.minutes(ACCESS_TOKEN_MINUTES),
            id_token_validity=Duration.minutes(ACCESS_TOKEN_MINUTES),
            refresh_token_validity=Duration.hours(REFRESH_TOKEN_HOURS),
            enable_token_revocation=True,
            prevent_user_existence_errors=True,
        )
        #: the admin API's console routes: a Cognito access token of this pool, issued to this client
        self.authorizer = authorizers.HttpUserPoolAuthorizer(
            "ConsoleAuthorizer",
            self.user_pool,
            user_pool_clients=[self.client],
            authorizer_name="console",
        )
        api.accept_console_sign_in(self.authorizer)

    @property
    def sign_in_url(self) -> str:
        """The hosted login's base URL: ``/oauth2/authorize``, ``/oauth2/token`` and ``/logout`` are under it."""
        return self.domain.base_url()

    @property
    def names(self) -> dict[str, str]:
        """What the console function's environment calls each part (``infra.config.SIGN_IN_ENV``)."""
        return {
            "sign_in": self.sign_in_url,
            "sign_in_client": self.client.user_pool_client_id,
            "sign_in_api_base": CONSOLE_PREFIX,
        }
