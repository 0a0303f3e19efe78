"""The delivery providers: each fake and its adapter pass the same tests.

- mailer: ``MemoryMailer`` and ``SesMailer`` on moto's SES v2 (the sender verified; the raw message moto
  stores is parsed back as a mail client reads it);
- texter: ``MemoryTexter`` and ``SnsTexter`` on moto's SNS (moto's opt-out list: numbers ending in 99);
- the delivery secret: ``StaticSecret`` and ``SecretsManagerSecret`` on moto's Secrets Manager;
- webhooks: ``MemoryWebhookPoster`` and ``HttpWebhookPoster`` against an ``http.server`` on 127.0.0.1.

moto is kinder than AWS (no sandbox, no throttles, no account pause): those answers are injected into the
client as SES and SNS give them, and the adapter-only tests check how each is read.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.delivery.ports import OutgoingEmail, ProviderRefused
from shared.errors import DependencyUnavailable
from tests.fakes import MemoryMailer, MemoryTexter, MemoryWebhookPoster, StaticSecret

SENDER = "news@acme.example"
REGION = "eu-west-1"
UNSUBSCRIBE = "<https://api.example.com/unsubscribe?token=" + "a1B2c3D4" * 20 + ">"
EMAIL = OutgoingEmail(
    sender=f"Acme News <{SENDER}>",
    to="ann@example.com",
    subject="Grüße: your basket misses you",
    text="Hello Ann",
    html="<p>Hello Ann</p>",
    headers={"List-Unsubscribe": UNSUBSCRIBE, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    tags={"lc_send": "dXNlcl9pZDphbm4", "lc_contact": "dXNlcl9pZDphbm4jMQ"},
)
#: SES's rule for message tags (names and values), which moto does not enforce
SES_TAG = re.compile(r"^[A-Za-z0-9_.@-]{1,256}$")
OPTED_OUT = "+447700900199"  # moto's opt-out list: every number ending in 99
NUMBER = "+447700900123"


@pytest.fixture(params=["fake", "aws"])
def side(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def moto() -> Iterator[None]:
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        yield
        aws.reset()


def refusal(
    code: str, status: int = 400, message: str = "injected", operation: str = "SendEmail"
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class Injected:
    """Answers injected into a client before its calls go out (one per call, in order), and the
    parameters of every call that went out."""

    def __init__(self, client: Any, service: str, operation: str) -> None:
        self.failures: list[Exception] = []
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register(f"provide-client-params.{service}.{operation}", self._record)
        client.meta.events.register(f"before-call.{service}.{operation}", self._fail)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))

    def _fail(self, **_: Any) -> None:
        if self.failures:
            raise self.failures.pop(0)


# --- the mailer ---------------------------------------------------------------------------------------


@dataclass
class Mail:
    port: Any
    #: the raw messages the provider took, oldest first
    received: Any
    #: make the next send fail as SES throttles (429 TooManyRequestsException)
    throttle_next: Any
    injected: Injected | None = None


@pytest.fixture
def mail(side: str, request: pytest.FixtureRequest) -> Mail:
    if side == "fake":
        fake = MemoryMailer(verified={SENDER})
        return Mail(fake, lambda: list(fake.raw), lambda: fake.fail_next(DependencyUnavailable("throttled")))
    request.getfixturevalue("moto")
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from shared.adapters import aws
    from shared.adapters.ses_mailer import SesMailer

    client = aws.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)
    client.create_configuration_set(ConfigurationSetName="lifecycle-contract")
    injected = Injected(client, "sesv2", "SendEmail")

    def received() -> list[bytes]:
        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        return [m.raw_data.encode() for m in sent]

    def throttle_next() -> None:
        injected.failures.append(refusal("TooManyRequestsException", 429))

    return Mail(SesMailer(client, configuration_set="lifecycle-contract"), received, throttle_next, injected)


def test_an_email_is_taken_with_an_id_and_arrives_with_the_headers_sent(mail: Mail) -> None:
    first, second = mail.port.send(EMAIL), mail.port.send(replace(EMAIL, to="bob@example.com"))
    assert first and second and first != second
    raw = mail.received()
    assert len(raw) == 2
    message = BytesParser(policy=policy.default).parsebytes(raw[0])
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Grüße: your basket misses you"
    assert message["List-Unsubscribe"] == UNSUBSCRIBE
    assert f"\nList-Unsubscribe: {UNSUBSCRIBE}\r\n".encode() in raw[0], "as written, not re-encoded"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert BytesParser(policy=policy.default).parsebytes(raw[1])["To"] == "bob@example.com"


def test_an_unverified_sender_is_refused_for_good_and_nothing_is_sent(mail: Mail) -> None:
    with pytest.raises(ProviderRefused) as refused:
        mail.port.send(replace(EMAIL, sender="Acme News <someone@elsewhere.example>"))
    assert refused.value.reason == "ses_message_rejected"
    assert mail.received() == []
    assert mail.port.send(replace(EMAIL, sender=SENDER)), "the verified address, with or without a name"


def test_a_message_with_an_injected_header_is_refused_before_the_provider_sees_it(mail: Mail) -> None:
    injection = {"List-Unsubscribe": "<https://x.example/u>\r\nBcc: everyone@example.com"}
    with pytest.raises(ProviderRefused) as refused:
        mail.port.send(replace(EMAIL, headers=injection))
    assert refused.value.reason == "invalid_message"
    assert mail.received() == []
    if mail.injected is not None:
        assert mail.injected.calls == [], "SES was never called"


def test_a_throttled_send_is_unavailable_for_now_and_the_next_one_goes_through(mail: Mail) -> None:
    mail.throttle_next()
    with pytest.raises(DependencyUnavailable):
        mail.port.send(EMAIL)
    assert mail.received() == []
    assert mail.port.send(EMAIL)
    assert len(mail.received()) == 1


def test_ses_is_asked_with_the_configuration_set_the_tags_and_the_raw_message(moto: None) -> None:
    from shared.adapters import aws
    from shared.adapters.ses_mailer import SesMailer

    client = aws.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)
    injected = Injected(client, "sesv2", "SendEmail")
    SesMailer(client, configuration_set="lifecycle-contract").send(EMAIL)
    SesMailer(client, configuration_set=None).send(replace(EMAIL, tags={}))
    with_set, without = injected.calls
    assert with_set["ConfigurationSetName"] == "lifecycle-contract"
    assert with_set["EmailTags"] == [{"Name": k, "Value": v} for k, v in EMAIL.tags.items()]
    assert all(SES_TAG.match(t["Name"]) and SES_TAG.match(t["Value"]) for t in with_set["EmailTags"])
    assert with_set["Destination"] == {"ToAddresses": ["ann@example.com"]}
    assert with_set["FromEmailAddress"] == SENDER, "the envelope's bare address"
    assert set(with_set["Content"]) == {"Raw"} and with_set["Content"]["Raw"]["Data"].startswith(b"From: ")
    assert "ConfigurationSetName" not in without and "EmailTags" not in without
    SesMailer(client, configuration_set=None).send(replace(EMAIL, to="Ann <ann@bücher.example>"))
    assert injected.calls[-1]["Destination"] == {"ToAddresses": ["ann@xn--bcher-kva.example"]}


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("MessageRejected", "ses_message_rejected"),
        ("MailFromDomainNotVerifiedException", "ses_mail_from_not_verified"),
        ("BadRequestException", "ses_bad_request"),
        ("NotFoundException", "ses_configuration_set_not_found"),
    ],
)
def test_what_ses_refuses_for_good_is_a_refusal_with_a_short_reason(
    moto: None, code: str, reason: str
) -> None:
    from shared.adapters import aws
    from shared.adapters.ses_mailer import SesMailer

    client = aws.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)
    Injected(client, "sesv2", "SendEmail").failures.append(
        refusal(code, 404 if code == "NotFoundException" else 400)
    )
    with pytest.raises(ProviderRefused) as refused:
        SesMailer(client, configuration_set="lifecycle-contract").send(EMAIL)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("failure", "retry_after"),
    [
        (refusal("TooManyRequestsException", 429, "Maximum sending rate exceeded."), 2),
        (refusal("LimitExceededException", 400, "Daily message quota exceeded."), 600),
        (refusal("InternalFailure", 500), 2),
        (refusal("ServiceUnavailable", 503), 2),
        # the whole account is paused or suspended: the messages wait (then in the dead letters), not skipped
        (refusal("SendingPausedException", 400), 2),
        (refusal("AccountSuspendedException", 400), 2),
    ],
)
def test_throttles_quotas_and_server_errors_are_unavailable_for_now(
    moto: None, failure: ClientError, retry_after: int
) -> None:
    from shared.adapters import aws
    from shared.adapters.ses_mailer import SesMailer

    client = aws.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)
    Injected(client, "sesv2", "SendEmail").failures.append(failure)
    with pytest.raises(DependencyUnavailable) as unavailable:
        SesMailer(client, configuration_set=None).send(EMAIL)
    assert unavailable.value.retry_after_seconds == retry_after
    assert "email" in unavailable.value.message and "quota" not in unavailable.value.message


def test_a_network_failure_is_unavailable_for_now_and_a_missing_permission_is_raised_as_it_is(
    moto: None,
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from shared.adapters import aws
    from shared.adapters.ses_mailer import SesMailer

    client = aws.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)
    injected = Injected(client, "sesv2", "SendEmail")
    injected.failures += [EndpointConnectionError(endpoint_url="https://email.eu-west-1.amazonaws.com")]
    injected.failures += [refusal("AccessDeniedException", 403)]
    mailer = SesMailer(client, configuration_set=None)
    with pytest.raises(DependencyUnavailable):
        mailer.send(EMAIL)
    with pytest.raises(ClientError, match="AccessDenied"):
        mailer.send(EMAIL)


# --- the texter ---------------------------------------------------------------------------------------


@dataclass
class Texts:
    port: Any
    received: Any
    throttle_next: Any
    injected: Injected | None = None


@pytest.fixture
def texts(side: str, request: pytest.FixtureRequest) -> Texts:
    if side == "fake":
        fake = MemoryTexter(opted_out={OPTED_OUT})
        return Texts(
            fake, lambda: list(fake.sent), lambda: fake.fail_next(DependencyUnavailable("throttled"))
        )
    request.getfixturevalue("moto")
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    from shared.adapters import aws
    from shared.adapters.sns_texter import SnsTexter

    client = aws.client("sns")
    injected = Injected(client, "sns", "Publish")

    def received() -> list[tuple[str, str]]:
        return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())

    def throttle_next() -> None:
        injected.failures.append(refusal("Throttled", 429, "Rate exceeded", "Publish"))

    return Texts(SnsTexter(client, sender_id="Acme"), received, throttle_next, injected)


def test_the_opt_out_list_is_read_for_each_number(texts: Texts) -> None:
    assert texts.port.opted_out(OPTED_OUT) is True
    assert texts.port.opted_out(NUMBER) is False


def test_a_text_is_sent_to_the_number_with_an_id(texts: Texts) -> None:
    first = texts.port.send(NUMBER, "Your code: 1234 — reply STOP to opt out")
    second = texts.port.send("+14155550123", "Hi")
    assert first and second and first != second
    assert texts.received() == [(NUMBER, "Your code: 1234 — reply STOP to opt out"), ("+14155550123", "Hi")]


@pytest.mark.parametrize("number", ["not-a-number", "+0123", "+4477009001234567890"])
def test_a_number_sns_cannot_text_is_refused_for_good(texts: Texts, number: str) -> None:
    with pytest.raises(ProviderRefused) as refused:
        texts.port.send(number, "Hi")
    assert refused.value.reason == "invalid_number"
    assert texts.received() == []


def test_a_throttled_text_is_unavailable_for_now_and_the_next_one_goes_through(texts: Texts) -> None:
    texts.throttle_next()
    with pytest.raises(DependencyUnavailable):
        texts.port.send(NUMBER, "Hi")
    assert texts.received() == []
    assert texts.port.send(NUMBER, "Hi")
    assert len(texts.received()) == 1


def test_texts_are_promotional_with_the_sender_id_and_sns_failures_are_read_as_sns_means_them(
    moto: None,
) -> None:
    from shared.adapters import aws
    from shared.adapters.sns_texter import SnsTexter

    client = aws.client("sns")
    injected = Injected(client, "sns", "Publish")
    SnsTexter(client, sender_id="Acme").send(NUMBER, "Hi")
    SnsTexter(client).send(NUMBER, "Hi")
    with_id, without = injected.calls
    assert with_id["PhoneNumber"] == NUMBER and with_id["Message"] == "Hi"
    assert with_id["MessageAttributes"] == {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"},
        "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "Acme"},
    }
    assert set(without["MessageAttributes"]) == {"AWS.SNS.SMS.SMSType"}
    texter = SnsTexter(client)
    injected.failures += [
        refusal("InvalidParameter", 400, "Invalid parameter: PhoneNumber is opted out", "Publish"),
        refusal("InvalidParameter", 400, "Invalid parameter: MessageAttributes", "Publish"),
        refusal("InternalError", 500, "injected", "Publish"),
        refusal("AuthorizationError", 403, "not allowed", "Publish"),
    ]
    for reason in ("opted_out", "sns_invalid_parameter"):
        with pytest.raises(ProviderRefused) as refused:
            texter.send(NUMBER, "Hi")
        assert refused.value.reason == reason
    with pytest.raises(DependencyUnavailable):
        texter.send(NUMBER, "Hi")
    with pytest.raises(ClientError, match="AuthorizationError"):
        texter.send(NUMBER, "Hi")


def test_a_throttled_opt_out_check_is_unavailable_and_an_invalid_number_is_not_on_the_list(
    moto: None,
) -> None:
    from shared.adapters import aws
    from shared.adapters.sns_texter import SnsTexter

    client = aws.client("sns")
    injected = Injected(client, "sns", "CheckIfPhoneNumberIsOptedOut")
    injected.failures += [
        refusal("Throttled", 429, "Rate exceeded", "CheckIfPhoneNumberIsOptedOut"),
        refusal("InvalidParameter", 400, "Invalid parameter: PhoneNumber", "CheckIfPhoneNumberIsOptedOut"),
    ]
    texter = SnsTexter(client)
    with pytest.raises(DependencyUnavailable):
        texter.opted_out(NUMBER)
    assert texter.opted_out("12") is False
    assert texter.opted_out(OPTED_OUT) is True


# --- the delivery secret ------------------------------------------------------------------------------


@pytest.fixture
def secrets_client(moto: None) -> Any:
    from shared.adapters import aws

    return aws.client("secretsmanager")


def test_the_secret_is_its_value_as_bytes_on_both_sides(secrets_client: Any) -> None:
    from shared.adapters.delivery_secret import SecretsManagerSecret

    arn = secrets_client.create_secret(Name="lifecycle/delivery", SecretString="s3cret-ünïcode")["ARN"]
    for port in (
        StaticSecret("s3cret-ünïcode".encode()),
        SecretsManagerSecret(lambda: secrets_client, secret_arn=arn),
    ):
        assert port.key() == "s3cret-ünïcode".encode()
        assert port.key() == port.key()


def test_the_secret_is_read_once_per_instance(secrets_client: Any) -> None:
    from shared.adapters.delivery_secret import SecretsManagerSecret

    arn = secrets_client.create_secret(Name="lifecycle/delivery", SecretString="first")["ARN"]
    injected = Injected(secrets_client, "secrets-manager", "GetSecretValue")
    made: list[int] = []

    def factory() -> Any:
        made.append(1)
        return secrets_client

    secret = SecretsManagerSecret(factory, secret_arn=arn)
    assert made == [], "no client and no call before the key is needed"
    assert secret.key() == b"first"
    secrets_client.put_secret_value(SecretId=arn, SecretString="second")
    assert secret.key() == b"first", "kept for the instance's life"
    assert len(injected.calls) == 1
    assert SecretsManagerSecret(lambda: secrets_client, secret_arn=arn).key() == b"second", (
        "a new instance reads it"
    )


def test_a_binary_secret_is_its_bytes(secrets_client: Any) -> None:
    from shared.adapters.delivery_secret import SecretsManagerSecret

    arn = secrets_client.create_secret(Name="lifecycle/binary", SecretBinary=b"\x00\x01key")["ARN"]
    assert SecretsManagerSecret(lambda: secrets_client, secret_arn=arn).key() == b"\x00\x01key"


def test_a_missing_secret_is_a_clear_unavailable_error(secrets_client: Any) -> None:
    from shared.adapters.delivery_secret import SecretsManagerSecret

    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:lifecycle/none-AbCdEf"
    with pytest.raises(DependencyUnavailable) as missing:
        SecretsManagerSecret(lambda: secrets_client, secret_arn=arn).key()
    assert missing.value.code == "delivery_secret_missing"
    assert "delivery secret does not exist" in missing.value.message


def test_a_throttled_read_is_unavailable_and_the_next_call_reads_again(secrets_client: Any) -> None:
    from shared.adapters.delivery_secret import SecretsManagerSecret

    arn = secrets_client.create_secret(Name="lifecycle/delivery", SecretString="value")["ARN"]
    injected = Injected(secrets_client, "secrets-manager", "GetSecretValue")
    injected.failures.append(refusal("ThrottlingException", 400, "Rate exceeded", "GetSecretValue"))
    secret = SecretsManagerSecret(lambda: secrets_client, secret_arn=arn)
    with pytest.raises(DependencyUnavailable) as unavailable:
        secret.key()
    assert unavailable.value.code == "unavailable"
    assert secret.key() == b"value", "a failure is not kept"


# --- webhooks -----------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """An HTTP server on 127.0.0.1: ``/status/<n>`` answers n, ``/redirect`` a 302 to ``/target``,
    ``/hang`` never answers (until the test ends); what each request carried is in ``received``."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    found = Endpoint(f"http://127.0.0.1:{server.server_address[1]}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            found.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if self.path == "/hang":
                found.release.wait(30)
                return
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"{found.url}/target")
            else:
                self.send_response(int(self.path.rsplit("/", 1)[-1]))
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield found
    found.release.set()
    server.shutdown()
    server.server_close()


BODY = json.dumps({"event": "cart_abandoned", "contact": "user_id:ann"}).encode()
SIGNED = {
    "X-Lifecycle-Signature": "t=1796000000,v1=" + "ab" * 32,
    "X-Lifecycle-Delivery": "user_id:ann#a1#1#0",
}
LOCAL = frozenset({"127.0.0.1"})


@dataclass
class Hooks:
    port: Any
    url: str
    #: answer the next post with this status (the fake from its queue, the server by the path)
    answering: Any


@pytest.fixture
def hooks(side: str, request: pytest.FixtureRequest) -> Hooks:
    if side == "fake":
        fake = MemoryWebhookPoster(plain_http_hosts=LOCAL)
        return Hooks(fake, "http://127.0.0.1:9", lambda status: fake.answers.append(status) or "/hook")
    from shared.adapters.webhook_poster import HttpWebhookPoster

    server: Endpoint = request.getfixturevalue("endpoint")
    return Hooks(HttpWebhookPoster(plain_http_hosts=LOCAL), server.url, lambda status: f"/status/{status}")


@pytest.mark.parametrize("status", [200, 204, 400, 404, 408, 429, 500, 503])
def test_every_http_answer_is_its_status(hooks: Hooks, status: int) -> None:
    path = hooks.answering(status)
    assert hooks.port.post(f"{hooks.url}{path}", BODY, SIGNED, 2.0) == status


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/in", "insecure_url"),
        ("http://127.0.0.2/in", "insecure_url"),
        ("ftp://hooks.example.com/in", "invalid_url"),
        ("https:///in", "invalid_url"),
        ("https://hooks.example.com/a b", "invalid_url"),
        ("https://hooks.example.com:port/in", "invalid_url"),
        ("hooks.example.com/in", "invalid_url"),
    ],
)
def test_a_url_that_is_not_https_or_not_a_url_is_refused_for_good(
    hooks: Hooks, url: str, reason: str
) -> None:
    with pytest.raises(ProviderRefused) as refused:
        hooks.port.post(url, BODY, SIGNED, 2.0)
    assert refused.value.reason == reason


def test_the_endpoint_gets_the_body_and_the_headers(endpoint: Endpoint) -> None:
    from shared.adapters.webhook_poster import HttpWebhookPoster

    assert (
        HttpWebhookPoster(plain_http_hosts=LOCAL).post(f"{endpoint.url}/status/202", BODY, SIGNED, 2.0) == 202
    )
    (received,) = endpoint.received
    headers = {k.lower(): v for k, v in received["headers"].items()}
    assert received["body"] == BODY
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Lifecycle-Webhooks/1"
    assert headers["x-lifecycle-signature"] == SIGNED["X-Lifecycle-Signature"]
    assert headers["x-lifecycle-delivery"] == SIGNED["X-Lifecycle-Delivery"]


def test_a_redirect_is_not_followed(endpoint: Endpoint) -> None:
    from shared.adapters.webhook_poster import HttpWebhookPoster

    assert (
        HttpWebhookPoster(plain_http_hosts=LOCAL).post(f"{endpoint.url}/redirect", BODY, SIGNED, 2.0) == 302
    )
    assert [r["path"] for r in endpoint.received] == ["/redirect"], "the signed body went nowhere else"


def test_plain_http_to_a_host_not_allowed_is_refused_before_anything_is_sent(endpoint: Endpoint) -> None:
    from shared.adapters.webhook_poster import HttpWebhookPoster

    with pytest.raises(ProviderRefused) as refused:
        HttpWebhookPoster().post(f"{endpoint.url}/status/200", BODY, SIGNED, 2.0)
    assert refused.value.reason == "insecure_url"
    assert endpoint.received == []


def test_an_endpoint_that_does_not_answer_in_time_is_unavailable_for_now(endpoint: Endpoint) -> None:
    from shared.adapters.webhook_poster import HttpWebhookPoster

    with pytest.raises(DependencyUnavailable):
        HttpWebhookPoster(plain_http_hosts=LOCAL).post(f"{endpoint.url}/hang", BODY, SIGNED, 0.2)
    assert [r["path"] for r in endpoint.received] == ["/hang"]


def test_an_endpoint_that_refuses_the_connection_is_unavailable_for_now() -> None:
    import socket

    from shared.adapters.webhook_poster import HttpWebhookPoster

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(DependencyUnavailable):
        HttpWebhookPoster(plain_http_hosts=LOCAL).post(f"http://127.0.0.1:{port}/in", BODY, SIGNED, 2.0)


def test_the_fake_records_each_post_and_raises_what_it_is_told() -> None:
    fake = MemoryWebhookPoster([500, DependencyUnavailable("timed out")], plain_http_hosts=LOCAL)
    assert fake.post("https://hooks.example.com/in", BODY, SIGNED, 5.0) == 500
    with pytest.raises(DependencyUnavailable):
        fake.post("https://hooks.example.com/in", BODY, SIGNED, 5.0)
    assert fake.post("https://hooks.example.com/in", BODY, SIGNED, 5.0) == 200
    assert [(p.url, p.body, p.headers, p.timeout) for p in fake.posted] == [
        ("https://hooks.example.com/in", BODY, SIGNED, 5.0)
    ] * 3
