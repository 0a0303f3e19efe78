"""Issue 15, the NPS report end to end on the local stack: delivery counts each survey it sends (once, however
often its message comes back), the metrics function counts each answer announced on the bus (once, however
often it is answered again), and ``/admin/metrics/nps`` reports the NPS, its interval and the response
rate, by stage and by survey; each function as deployed (its own environment, only its grants)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from tests.integration.test_local_delivery import SERVER, call, daytime, identify, outbox, request_delivery
from tests.integration.test_nps_end_to_end import FORM, example

USERS = ("ann", "bob", "cy")


def report(stack: Any, **query: str) -> dict[str, Any]:
    stack.drain_streams()
    status, answer = call(stack, "GET", f"/admin/metrics/nps?{urlencode(query)}")
    assert status == 200, answer
    return answer


def test_surveys_sent_and_answers_become_the_nps_report(local_stack) -> None:
    stack = local_stack
    today = daytime(stack).date().isoformat()
    for user in USERS:
        identify(stack, user, email=f"{user}@example.com", email_opt_in=True)
    assert call(stack, "PUT", "/admin/templates/nps-survey", example("nps-survey"))[0] == 200

    # the survey goes to all three; Ann's request is queued twice (a retried automation): one send, one count
    for user in USERS:
        request_delivery(stack, f"user_id:{user}#nps-q4#o1#0", template="nps-survey")
    request_delivery(stack, "user_id:ann#nps-q4#o1#0", template="nps-survey")
    # and an email that is no survey
    request_delivery(stack, "user_id:ann#welcome#o1#0", subject="Welcome", text="Hello")
    stack.drain_streams()
    day = {"period": "day", "from": today, "to": today}
    (sent,) = report(stack, **day)["periods"]
    assert (sent["sent"], sent["responses"], sent["response_rate"], sent["nps"]) == (3, 0, 0.0, None)

    # Ann answers 2 by her link (twice: the first answer wins), Bob 10 from a server key; Cy does not answer
    ann = outbox(stack, "user_id:ann#nps-q4#o1#0")
    links = dict(re.findall(r"^(\d+): (\S+)$", ann["text"], re.MULTILINE))
    for score in ("2", "10"):
        path = links[score].removeprefix(stack.url)
        assert call(stack, "POST", path, raw=urlencode({"score": score}).encode(), headers=FORM)[0] == 200
    answer = {"event": "NPS Submitted", "properties": {"survey_id": "nps-survey", "score": 10}}
    status, _ = call(
        stack,
        "POST",
        "/v1/track",
        {"userId": "bob", "messageId": "nps-bob", **answer},
        {"authorization": SERVER},
    )
    assert status == 200

    found = report(stack, **day)
    (period,) = found["periods"]
    # one promoter, one detractor: 50 % - 50 % = 0, of 2 answers; 2 of 3 surveys answered
    assert (period["responses"], period["promoters"], period["detractors"], period["nps"]) == (2, 1, 1, 0.0)
    assert (period["sent"], period["response_rate"]) == (3, 0.6667)
    assert period["nps_low"] < 0 < period["nps_high"] and period["response_rate_low"] < 0.6667
    assert found["total"] == {
        k: v for k, v in period.items() if k not in ("period", "start", "end", "groups")
    }
    (survey,) = found["by_survey"]
    assert (survey["key"], survey["responses"], survey["sent"]) == ("nps-survey", 2, 3)
    # the stage each was in when it answered (both identified with an address: the same stage)
    assert sum(group["responses"] for group in found["by_stage"]) == 2
    status, ann_card = call(stack, "GET", "/admin/contacts/user_id:ann")
    assert status == 200 and [g["key"] for g in found["by_stage"]] == [ann_card["stage"]]

    # by month, the same; a bad breakdown is a 400 naming it
    month = report(stack, period="month", **{"from": today[:8] + "01", "to": today}, by="stage")
    assert month["total"] == found["total"] and month["periods"][-1]["groups"] == found["by_stage"]
    status, refused = call(stack, "GET", "/admin/metrics/nps?by=country")
    assert (status, refused["code"], refused["field"]) == (400, "invalid_parameter", "by")
