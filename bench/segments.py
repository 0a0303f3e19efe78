"""Issue 13's section of BENCHMARKS.md: segments, back-fills, campaigns and lifecycle metrics, in requests,
items and capacity units per unit of work (counts within one run; CPU where it says so), with estimated
costs at list prices.

1. ``bench.membership``: membership upkeep per contact change, through the functions as deployed on moto.
2. ``bench.backfill``: the contacts back-fill at 100,000 contacts in-process, confirmed on moto.
3. ``bench.campaign_planning``: campaign send planning at 100,000 recipients in-process, confirmed on moto.
4. ``bench.metric_reports``: each ``/admin/metrics`` report through the admin handler on moto.
5. ``bench.funnel_exits``: a merged visitor's removal through the functions on moto, and the metrics
   back-fill at 100,000 contacts in-process, confirmed on moto.

``python -m bench segments`` runs this section alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.nightly import CHILD_TRANSITIONS, FULL_CPU_MB, Latency, Prices, _price, lambda_seconds

#: list prices, us-east-1 (the nightly section's)
PRICES = Prices()
#: SQS standard queue, us-east-1: per million requests (a batch of up to 10 messages and 64 KB is one)
SQS_PER_MILLION = 0.40
#: what a request keeps a function waiting (seconds): assumptions, not measurements (the nightly
#: section's, and these two)
LATENCY = Latency()
QUERY_WAIT = 0.010
SQS_BATCH_WAIT = 0.015
#: a back-fill run's own state transitions (start, the map, the end), besides its children's
BACKFILL_RUN_TRANSITIONS = 3


def _per(value: float, of: float, digits: int = 2) -> str:
    return f"{value / of:.{digits}f}" if of else "-"


# --- 1. membership ----------------------------------------------------------------------------------------

CASES = {
    "quiet": "a page view (no membership moves)",
    "enter": "an identify that tags the contact (enters 1 segment)",
    "leave": "31 days later, the hourly timers (leaves 1 segment by its due time)",
}


def _function_cost(case: Mapping[str, Any], names: Sequence[str]) -> dict[str, float]:
    contacts = case["contacts"]
    parts = [case["functions"][n] for n in names]
    return {
        "dynamodb": sum(p["dynamodb"] for p in parts) / contacts,
        "put_events": sum(p["put_events"] for p in parts) / contacts,
        "events": sum(p["events"] for p in parts) / contacts,
        "wru": sum(p["wru"] for p in parts) / contacts,
        "rru": sum(p["rru"] for p in parts) / contacts,
        "config_reads": sum(p["config_reads"] for p in parts),
    }


def _requests_text(case: Mapping[str, Any], names: Sequence[str]) -> str:
    contacts = case["contacts"]
    merged: dict[str, int] = {}
    for name in names:
        for op, n in case["functions"][name]["requests"].items():
            merged[op] = merged.get(op, 0) + n
    if not merged:
        return "none"
    return ", ".join(f"{op.removeprefix('events.')} {n / contacts:g}" for op, n in sorted(merged.items()))


def membership_section(runs: Sequence[Mapping[str, Any]], prices: Prices = PRICES) -> str:
    from bench.membership import CONTACTS, RECENT

    upkeep = ("stage_transition", "timers")
    baseline = {c["case"]: _function_cost(c, upkeep) for c in runs[0]["cases"]}
    rows = []
    for run in runs:
        for case in run["cases"]:
            cost = _function_cost(case, upkeep)
            base = baseline[case["case"]]
            rows.append(
                f"| {run['segments']} ({run['conditions']}) | {CASES[case['case']]} | "
                f"{_requests_text(case, upkeep)} | {cost['dynamodb']:.2f} | {cost['wru']:.2f} | {cost['rru']:.2f} | "
                f"{cost['events']:.2f} | **{cost['dynamodb'] - base['dynamodb']:+.2f}** req, "
                f"**{cost['wru'] - base['wru']:+.2f}** WRU, {cost['rru'] - base['rru']:+.2f} RRU |"
            )
    path = runs[0]["cases"][0]["functions"]
    tracked = (path["tracking"]["wru"] + path["aggregation"]["wru"]) / runs[0]["cases"][0]["contacts"]
    books = "; ".join(
        f"{r['segments']} segments: {r['book_bytes'] / 1024:,.1f} KB, {r['book_rru']:.1f} RRU"
        for r in runs[1:]
    )
    cpu = " | ".join(f"{r['evaluation']['us_per_record']:,.0f} µs" for r in runs)
    stage_config = sum(c["functions"]["stage_transition"]["config_reads"] for c in runs[-1]["cases"])
    timers_config = sum(c["functions"]["timers"]["config_reads"] for c in runs[-1]["cases"])
    heads = " | ".join(f"{r['segments']} segments" for r in runs)
    largest = runs[-1]
    enter = next(c for c in largest["cases"] if c["case"] == "enter")
    enter_cost = _function_cost(enter, upkeep)
    per_million = (
        enter_cost["wru"] * prices.per_million_wru
        + enter_cost["rru"] * prices.per_million_rru
        + enter_cost["events"] * prices.per_million_events
    )
    extra_us = largest["evaluation"]["us_per_record"] - runs[0]["evaluation"]["us_per_record"]
    from infra.wiring import function

    memory = function("stage_transition").memory_mb
    from infra.config import DeploymentConfig

    shards = DeploymentConfig().due_shards
    extra_gb_s = extra_us / 1e6 / min(1.0, memory / FULL_CPU_MB) * memory / 1024
    quiet_per_million = extra_gb_s * 1e6 * prices.lambda_gb_second_arm
    return f"""
### Membership upkeep per contact change

On moto, the tracking, aggregation, stage and timer functions hosted as deployed (environment, role, own
clients; `bench/membership.py`), {CONTACTS} contacts tracked through `/v1/batch` and their profile changes
delivered to the stage function by the contacts table's stream; every request counted on the function's
clients and billed by `bench.capacity`'s meter. Segments stored: none; 10; 100 (the system's limit, with
884 of its 1,000 conditions): one on a tag, `{RECENT}` (last visit within 30 days), and filters of 8 to 10
conditions of every kind that the contacts do not match. Per contact change, stage and timer functions
(the upkeep; tracking and aggregation cost the same in every row, {tracked:.0f} WRU per event):

| segments (conditions) | change | requests per change | DynamoDB requests | WRU | RRU | events on the bus | extra over no segments |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

- **A change that moves no membership costs no request**: the stage function sees on the stream's image
  that nothing changes, with 100 segments as with none. What segments add is CPU: the evaluation of every
  segment's filter, per record through the stage handler (a quiet batch delivered again, no request made;
  the least of 9 rounds):

  | {heads} |
  |{"---|" * len(runs)}
  | {cpu} |

- **Entering or leaving a segment** is a move: the contact read again (`GetItem`), its outbox read (`Query`),
  one transaction with the profile, the membership item and the announcement, then the announcement
  published (`PutEvents`) and marked (a second transaction). The same with 10 or 100 segments stored; with
  none, the same change writes nothing. A due-time departure is the timer function's: its due read (a
  `Query` of each of the {shards} due-index shards, for all the contacts due at once), the contact read three
  times (for the automations' lapses, for the re-evaluation, and again before the move, as on the stream:
  two reads more than the move needs) and the same move.
- **The segment book** (every segment's current version, one `Query` of the config table) is read once per
  function instance per `rulesCacheSeconds` (30 s) and kept compiled: {books}. In the measured changes the
  stage function read the config table {stage_config} times (its instance had read the book before, when the
  contacts arrived), the timer function {timers_config} times (its first run: the funnel, the automations'
  and the segments' books).
- **Estimated cost** (list prices, us-east-1; an estimate): a contact entering or leaving a segment,
  {enter_cost["wru"]:.0f} WRU + {enter_cost["rru"]:.1f} RRU + {enter_cost["events"]:.0f} event, about
  **${per_million:,.2f} per million moves**; a change that moves nothing, no request, and with 100 segments
  {extra_us:,.0f} µs more CPU in the stage function ({memory} MB, arm64): about
  **${quiet_per_million:,.3f} per million changes**.
"""


# --- 2. the contacts back-fill ------------------------------------------------------------------------------


def _requests(counts: Mapping[str, int], op: str) -> int:
    return int(counts.get(op, 0))


def backfill_estimate(
    scale: Mapping[str, Any], moto: Mapping[str, Any], prices: Prices = PRICES
) -> dict[str, Any]:
    """A back-fill at ``scale``'s size: the deployed Distributed Map's wall time (its segments 16 at a time,
    each the CPU measured here at the function's share of a vCPU plus assumed waits) and its cost."""
    from infra.wiring import CONTACTS_BACKFILL, function

    spec = function("backfill_contacts")
    share = min(1.0, spec.memory_mb / FULL_CPU_MB)
    segments = scale["segments"]
    concurrency = CONTACTS_BACKFILL.steps[0].each.max_concurrency
    requests = scale["requests"]
    changed_waits = (
        _requests(requests, "GetItem") * LATENCY.write
        + _requests(requests, "Query") * QUERY_WAIT
        + _requests(requests, "TransactWriteItems") * LATENCY.transaction
        + _requests(requests, "events.PutEvents") * LATENCY.put_events
    )
    waits = [
        changed_waits * contacts / scale["contacts"]
        + LATENCY.scan_page * requests["Scan"] * contacts / scale["contacts"]
        for contacts in scale["segment_contacts"]
    ]
    seconds = [
        lambda_seconds(cpu, spec.memory_mb, wait)
        for cpu, wait in zip(scale["cpu_by_segment"], waits, strict=True)
    ]
    waves = [seconds[start : start + concurrency] for start in range(0, segments, concurrency)]
    wall = sum(max(wave) for wave in waves)
    per_changed_wru = moto["wru"] / max(moto["changed"], 1)
    per_changed_rru = (moto["rru"] - moto["scan_rru"]) / max(moto["changed"], 1)
    write_units = scale["changed"] * per_changed_wru
    read_units = scale["scan"]["read_units"] + scale["changed"] * per_changed_rru
    gb_seconds = sum(seconds) * spec.memory_mb / 1024
    transitions = BACKFILL_RUN_TRANSITIONS + CHILD_TRANSITIONS * segments
    dollars = {
        "DynamoDB writes": write_units / 1e6 * prices.per_million_wru,
        "DynamoDB reads": read_units / 1e6 * prices.per_million_rru,
        "Lambda": gb_seconds * prices.lambda_gb_second_arm
        + segments / 1e6 * prices.lambda_per_million_requests,
        "Step Functions": transitions / 1000 * prices.per_thousand_transitions,
        "EventBridge": scale["announced"] / 1e6 * prices.per_million_events,
    }
    return {
        "share": share,
        "segments": segments,
        "concurrency": concurrency,
        "waves": len(waves),
        "segment_seconds": max(seconds),
        "wall": wall,
        "write_units": write_units,
        "read_units": read_units,
        "per_changed_wru": per_changed_wru,
        "per_changed_rru": per_changed_rru,
        "gb_seconds": gb_seconds,
        "transitions": transitions,
        "dollars": dollars,
        "total": sum(dollars.values()),
        "memory": spec.memory_mb,
        "timeout": spec.timeout_seconds,
    }


def backfill_section(result: Mapping[str, Any], prices: Prices = PRICES) -> str:
    scale, predicted, moto = result["at_scale"], result["predicted"], result["moto"]
    n = scale["contacts"]
    estimate = backfill_estimate(scale, moto, prices)
    ops = ("Scan", "GetItem", "Query", "TransactWriteItems", "events.PutEvents")
    compare = "\n".join(
        f"| {op.removeprefix('events.')} | {_requests(predicted['requests'], op):,} | {_requests(moto['requests'], op):,} |"
        for op in ops
    )
    changed_requests = sum(_requests(scale["requests"], op) for op in ops[1:]) / max(scale["changed"], 1)
    all_requests = sum(_requests(scale["requests"], op) for op in ops)
    templates = ", ".join(
        f"{t['items']} items ({t['bytes']:,} B){' tagged' if t['kids'] else ''}" for t in result["templates"]
    )
    cost_rows = "\n".join(f"| {service} | ${value:,.4f} |" for service, value in estimate["dollars"].items())
    stand_in = scale["scan"]["seconds"]
    return f"""
### The contacts back-fill of a new segment, at {n:,} contacts

The population (`bench/backfill.py`): {len(result["templates"])} template contacts tracked through the functions
as deployed on moto (identified, visiting, viewing products, buying; 2 of them tagged `kids`), with 9 segments
stored (the last visit within 30 days, 8 filters of 8 to 10 conditions), their streams drained; each
template's partition as the system left it (profile, stage history, memberships: {templates}) is copied to
{n:,} contacts, 10% from the tagged templates. The back-fill is the one a new segment `{{"tag": "kids"}}`
starts: the workflow's {scale["segments"]} scan segments, each through the real use case
(`backfill_contacts`, the stage function's evaluation of every contact with the 10 segments) and the real
Scan adapter, over a stand-in for DynamoDB's parallel Scan of the contacts table (`ContactsScan`: a
contact's items in one segment, pages of 1 MB of whole items read and billed before the filter, read
units of 4 KB halved); the stage store and the bus are the fakes of `tests/fakes.py`, their calls counted
as the adapters send requests.

| | at {n:,} contacts |
|---|---|
| contacts evaluated; entered the new segment | {scale["evaluated"]:,}; **{scale["entered"]:,}** ({scale["entered"] / n:.0%}, changed: {scale["changed"]:,}) |
| **items read per contact** (Scan, before the filter) | **{scale["read"] / n:.2f}** ({scale["read"]:,}: each profile and its partition's other items) |
| Scan requests | {scale["scan"]["requests"]:,} ({1000 * scale["scan"]["requests"] / n:.2f} per 1,000 contacts, {scale["scan"]["requests"] / scale["segments"]:.0f} pages a segment) |
| read units of the scan | {scale["scan"]["read_units"]:,.0f} ({scale["scan"]["read_units"] / n:.3f} per contact) |
| **requests per contact** | **{all_requests / n:.3f}**: a contact that does not change costs its share of the scan only; one that enters, {changed_requests:.0f} (`GetItem` of the contact, the move's transaction, its outbox read by key (`GetItem` of the profile's list, then of the entry), `PutEvents`, the marking's transaction: {scale["transaction_items"] / max(scale["changed"], 1):.0f} items in the two) |
| **CPU of the use case per 1,000 contacts** | **{scale["cpu_per_1000"]:.2f} s** ({scale["cpu"]:.1f} s for all; {stand_in:.1f} s of it the stand-in building pages, which botocore's parsing does in Lambda) |
| estimated wall time, deployed | **about {estimate["wall"]:.0f} s**: {estimate["segments"]} segments {estimate["concurrency"]} at a time ({estimate["waves"]} waves), the longest segment {estimate["segment_seconds"]:.0f} s (its CPU at {estimate["memory"]} MB's {estimate["share"]:.0%} of a vCPU, plus assumed waits: {LATENCY.scan_page * 1000:.0f} ms a Scan page, {LATENCY.write * 1000:.0f} ms a `GetItem`, {QUERY_WAIT * 1000:.0f} ms a `Query`, {LATENCY.transaction * 1000:.0f} ms a transaction, {LATENCY.put_events * 1000:.0f} ms a `PutEvents`); a segment's timeout is {estimate["timeout"]} s |

**On moto, at {moto["contacts"]:,}**: the same population's items in the contacts table, the new segment stored,
the workflow run by the local runner over {moto["segments"]} segments with `backfill_contacts` hosted as deployed
(environment, role, own clients): {moto["entered"]} entered of {moto["contacts"]:,} ({moto["changed"]} changed), {moto["read"]:,}
items read ({moto["read"] / moto["contacts"]:.2f} per contact). Requests, the fakes' prediction on the same
{predicted["contacts"]:,} beside moto's:

| request | the fakes predicted | moto |
|---|---|---|
{compare}

moto's extra `GetItem` and `Query`s are each segment run's first reads of the funnel and of the segment and
automation books (cached for the run: {moto["segments"]} runs of one warm instance here, one each deployed).
The scan billed {moto["scan_rru"]:.1f} read units on moto and {predicted["scan"]["read_units"]:.1f} in the stand-in (moto sizes
items a little differently). A contact that entered cost {estimate["per_changed_wru"]:.0f} WRU (the move's transaction
with the membership's index entry, the marking) and {estimate["per_changed_rru"]:.1f} RRU.

**Estimated cost of this back-fill at {n:,} contacts** (an estimate: the counts above at list prices,
us-east-1; DynamoDB on-demand, Lambda arm64 at {estimate["memory"]} MB for the estimated durations, Step Functions
Standard {CHILD_TRANSITIONS} transitions a child and {BACKFILL_RUN_TRANSITIONS} for the run, EventBridge per event):

| | dollars |
|---|---|
{cost_rows}
| **a back-fill** | **${estimate["total"]:,.3f}** |

({estimate["write_units"]:,.0f} WRU, {estimate["read_units"]:,.0f} RRU, {estimate["gb_seconds"]:,.0f} GB-s,
{estimate["transitions"]} transitions, {scale["announced"]:,} events.) A million contacts reads ten times as much; a
segment that most contacts enter costs its writes for most contacts.
"""


# --- 3. campaign send planning ---------------------------------------------------------------------------------


def planning_estimate(
    run: Mapping[str, Any], moto: Mapping[str, Any], prices: Prices = PRICES
) -> dict[str, Any]:
    """A campaign's planning at ``run``'s size: a planner run's estimated duration (CPU at the function's
    share of a vCPU, plus assumed waits) and the campaign's cost."""
    from infra.wiring import function

    spec = function("campaigns")
    runs = run["runs"]
    waits = (
        run["member_queries"] * QUERY_WAIT
        + run["exposure_requests"] * LATENCY.transaction
        + run["send_message_batches"] * SQS_BATCH_WAIT
        + run["state_requests"] * LATENCY.write
    )
    seconds = lambda_seconds(run["cpu"], spec.memory_mb, waits)
    per_run = seconds / max(runs - 1, 1)  # the last run plans what is left
    wru = moto["wru"] / moto["recipients"] * run["recipients"]
    # the members' pages from the stand-in; the rest (the state's and the campaign's reads) per run, from moto
    rru = run["member_rru"] + (moto["rru"] - moto["member_rru"]) / moto["runs"] * runs
    dollars = {
        "DynamoDB writes": wru / 1e6 * prices.per_million_wru,
        "DynamoDB reads": rru / 1e6 * prices.per_million_rru,
        "SQS": run["send_message_batches"] / 1e6 * SQS_PER_MILLION,
        "Lambda": seconds * spec.memory_mb / 1024 * prices.lambda_gb_second_arm
        + runs / 1e6 * prices.lambda_per_million_requests,
    }
    return {
        "seconds": seconds,
        "per_run": per_run,
        "wru": wru,
        "rru": rru,
        "dollars": dollars,
        "total": sum(dollars.values()),
        "timeout": spec.timeout_seconds,
        "memory": spec.memory_mb,
    }


def predicted_requests(run: Mapping[str, Any]) -> dict[str, int]:
    """The requests the adapters send for what the fakes counted in ``run`` (see the section's text)."""
    runs = run["runs"]
    saves = run["state_requests"] - 2 * runs  # the live set's Query and the state's read, each run
    return {
        "Query": run["member_queries"] + runs,
        "TransactWriteItems": run["exposure_requests"] + 1,
        "GetItem": 2 * runs,
        "PutItem": saves - 1,
        "sqs.SendMessageBatch": run["send_message_batches"],
    }


def campaigns_section(result: Mapping[str, Any], prices: Prices = PRICES) -> str:
    from bench.campaign_planning import HOLDOUT_PERCENT
    from shared.usecases.campaigns import SAFETY_SECONDS

    runs, predicted, moto = result["at_scale"], result["predicted"], result["moto"]
    n = runs[0]["recipients"]
    estimates = [planning_estimate(r, moto, prices) for r in runs]
    heads = " | ".join(f"{r['rate']:,} a minute" for r in runs)
    throughput = runs[-1]["recipients"] / max(estimates[-1]["seconds"], 1e-9)
    fastest = 100_000  # the most send_rate_per_minute allows
    need = fastest / throughput
    timeout = estimates[0]["timeout"]
    overlap = (
        f"A run outlasts its minute above some {60 * throughput:,.0f} recipients a minute: the next scheduled run then "
        "starts beside it and finds the campaign leased by the busy run (a lease in the campaign's state, to the "
        "busy run's deadline), so it skips it: no page is planned twice. "
        + (
            f"At {fastest:,} a minute, the most a campaign may ask, a run would need some {need:,.0f} s, past the "
            f"{timeout} s timeout: the planner stops {SAFETY_SECONDS:.0f} s before it and the next run goes on from "
            f"the cursor, so such a campaign is planned at about "
            f"{throughput * (timeout - SAFETY_SECONDS) / 1000:,.0f} thousand a minute."
            if need > timeout - SAFETY_SECONDS
            else f"At {fastest:,} a minute, the most a campaign may ask, a run would need some {need:,.0f} s, "
            f"within the {timeout} s timeout."
        )
    )

    def row(label: str, value: Any) -> str:
        return f"| {label} | " + " | ".join(value(r, e) for r, e in zip(runs, estimates, strict=True)) + " |"

    rows = [
        row("planner runs (one a minute) until sent", lambda r, e: f"**{r['runs']}**"),
        row(
            "requests queued; the most in one run",
            lambda r, e: f"{r['queued']:,}; {r['most_queued_in_a_run']:,}",
        ),
        row(
            "member pages: Queries of `bySegment` (per 1,000 recipients)",
            lambda r, e: f"{r['member_queries']:,} ({1000 * r['member_queries'] / n:.2f})",
        ),
        row(
            "exposures: transactions (per 1,000); items written per recipient",
            lambda r, e: (
                f"{r['exposure_requests']:,} ({1000 * r['exposure_requests'] / n:.1f}); {r['exposure_items'] / n:.2f}"
            ),
        ),
        row(
            "`SendMessageBatch` (per treated recipient)",
            lambda r, e: (
                f"{r['send_message_batches']:,} ({r['send_message_batches'] / max(r['queued'], 1):.3f})"
            ),
        ),
        row("campaign state: reads, cursor saves", lambda r, e: f"{r['state_requests']:,}"),
        row(
            "**requests per recipient** (DynamoDB + SQS)",
            lambda r, e: (
                f"**{(r['member_queries'] + r['exposure_requests'] + r['state_requests'] + r['send_message_batches']) / n:.3f}**"
            ),
        ),
        row(
            "**CPU of the planner per 1,000 recipients**",
            lambda r, e: f"**{r['cpu_per_1000'] * 1000:.0f} ms**",
        ),
        row(
            f"held out (target {HOLDOUT_PERCENT}%)",
            lambda r, e: (
                f"{r['arms'].get('holdout', 0):,} = {r['holdout_share']:.2%} ({r['holdout_sigmas']:+.1f} σ)"
            ),
        ),
        row(
            f"estimated duration of a full run (timeout {estimates[0]['timeout']} s)",
            lambda r, e: f"{e['per_run']:.1f} s",
        ),
    ]
    compare = "\n".join(
        f"| {op.removeprefix('sqs.')} | {n} | {moto['requests'].get(op, 0)} |"
        for op, n in predicted_requests(predicted).items()
    )
    costs = "\n".join(
        f"| {service} | " + " | ".join(f"${e['dollars'][service]:,.4f}" for e in estimates) + " |"
        for service in estimates[0]["dollars"]
    )
    return f"""
### Campaign send planning, at {n:,} recipients

The planner's use case (`advance_campaigns`, `bench/campaign_planning.py`) run once a minute until the
campaign is sent: a segment of {n:,} members, two variants (50/50) and a {HOLDOUT_PERCENT}% holdout, pages of 500.
The members are read by the real adapter (`DynamoSegmentMembers`) from a stand-in for DynamoDB's Query of
the `bySegment` index (`MemberIndex`: 16 partitions, pages stopped at `Limit` or 1 MB of keys-only entries
with `LastEvaluatedKey`, read units of 4 KB halved); the exposures, campaign states and the queue are the
fakes of `tests/fakes.py`, counting the requests their adapters send (`MemoryExposures`: transactions of 25
exposures with their counters' `ADD`s; the queue: `SqsDeliveryQueue`'s batches of 10).

| at {n:,} recipients | {heads} |
|---|{"---|" * len(runs)}
{chr(10).join(rows)}

A run's duration is its CPU at {estimates[0]["memory"]} MB's share of a vCPU plus assumed waits ({QUERY_WAIT * 1000:.0f} ms a
`Query`, {LATENCY.transaction * 1000:.0f} ms a transaction, {SQS_BATCH_WAIT * 1000:.0f} ms a `SendMessageBatch`, {LATENCY.write * 1000:.0f} ms a state
read or save): about {throughput:,.0f} recipients a second of a run. {overlap}

**On moto, at {moto["recipients"]:,} recipients** ({moto["rate"]:,} a minute): the campaigns function hosted as deployed,
the members' membership items in the contacts table, invoked once a minute; {moto["runs"]} runs, {moto["exposed"]:,} exposed
({moto["holdout"]} held out), {moto["messages"]:,} messages queued. Requests, the fakes' prediction beside moto's:

| request | the fakes predicted | moto |
|---|---|---|
{compare}

The prediction maps each fake's calls to the requests of its adapter: the members' pages are the
stand-in's `Query`s; an exposure chunk is a `TransactWriteItems`; of the campaign states' calls, the live set is a
`Query` and a state read a `GetItem` each run, a cursor save a `PutItem`, and the last (the state leaving the live
set) a `TransactWriteItems`; each run also reads the campaign's version (a `GetItem`). Billed on moto:
{moto["wru"] / moto["recipients"]:.2f} WRU and {moto["rru"] / moto["recipients"]:.3f} RRU per recipient.

**Estimated cost of planning a campaign to {n:,}** (an estimate at list prices: DynamoDB on-demand, SQS
{_price(SQS_PER_MILLION)} per million requests, Lambda arm64; write units per recipient from moto):

| | {heads} |
|---|{"---|" * len(runs)}
{costs}
| **planning a campaign** | {" | ".join(f"**${e['total']:,.3f}**" for e in estimates)} |

Sending them is delivery's (its ledger, the provider) and counting the results is feedback's and the events
trigger's, measured in their own sections.
"""


# --- 4. metric reports ---------------------------------------------------------------------------------------


def metrics_section(result: Mapping[str, Any], prices: Prices = PRICES) -> str:
    rows = []
    for r in result["reports"]:
        others = ", ".join(f"{op} {n}" for op, n in r["requests"].items() if op != "Query")
        rows.append(
            f"| `{r['report']}` | {r['period']} ({r['span']}) | **{r['queries']}**"
            f"{' + ' + others if others else ''} | {r['rows_read']:,} | {r['rru']:.1f} | {r['answer_bytes'] / 1024:,.1f} KB |"
        )
    most = max(r["rru"] for r in result["reports"])
    counted = result["counted"]
    return f"""
### Metric reports

On moto, the admin function hosted as deployed (`bench/metric_reports.py`); the metrics table holds the
counters of a synthetic population: {counted["contacts"]:,} contacts entering the funnel over 14 months
({counted["moves"]:,} stage moves, {counted["purchases"]:,} purchases), counted by the real use cases into
the fake store, whose counter items (as `DynamoMetricStore` shards them: {result["counter_items"]:,} items,
median {result["counter_bytes_median"]} bytes, largest {result["counter_bytes_max"]:,}) are put in the table.
Each report asked for through the admin handler with `period` alone (the default ranges), every request
counted on its clients and billed by the meter (the funnel it also reads is cached; the first call's read
is not counted):

| report | period | DynamoDB requests | counter items read | RRU | answer |
|---|---|---|---|---|---|
{chr(10).join(rows)}

A report is **8 Queries** (one per counter shard), **16** for the stage distribution by day or week (the
month rows before the range, then its days): never a Scan, never a contact read, whatever the population.
Read units grow with the counter items in the range (a month's rows hold more than a day's); the most a call
read here was {most:.1f} RRU: about **${most * 1000 / 1e6 * prices.per_million_rru:.5f} per 1,000 calls**
(estimate, list price {_price(prices.per_million_rru)} per million RRU; the admin function's Lambda time
aside).
"""


# --- 5. contacts leaving the funnel: a merged visitor's removal ----------------------------------------------------

REMOVAL_CASES = {
    "enter": "an anonymous visitor's first page view (placed in the funnel)",
    "move": "a lead buys (lead to customer)",
    "merge": "the visitor identifies as a known customer (merged away: it leaves its stage)",
}


def removal_cost(case: Mapping[str, Any], names: Sequence[str], prices: Prices = PRICES) -> dict[str, float]:
    """Per contact of ``case``: requests, capacity and announcements of the functions ``names``, the
    metrics function's invocations, and the estimated dollars per million (DynamoDB, EventBridge, the
    invocations' requests; Lambda durations aside)."""
    cost = _function_cost(case, names)
    invocations = case["metrics_invocations"] / case["contacts"]
    per_million = (
        cost["wru"] * prices.per_million_wru
        + cost["rru"] * prices.per_million_rru
        + cost["events"] * prices.per_million_events
        + invocations * prices.lambda_per_million_requests
    )
    return {**cost, "invocations": invocations, "per_million": per_million}


def removal_section(result: Mapping[str, Any], prices: Prices = PRICES) -> str:
    from bench.funnel_exits import STAGE_PATH

    n = result["contacts"]
    cases = {c["case"]: c for c in result["cases"]}
    rows = []
    for label, text in REMOVAL_CASES.items():
        case = cases[label]
        cost = removal_cost(case, STAGE_PATH, prices)
        handed = ", ".join(f"{t} {k / n:g}" for t, k in sorted(case["handed"].items())) or "none"
        rows.append(
            f"| {text} | {_requests_text(case, STAGE_PATH[:1])} | {_requests_text(case, STAGE_PATH[1:])} | "
            f"{handed} | {cost['dynamodb']:.2f} | {cost['wru']:.1f} | {cost['rru']:.1f} | "
            f"**${cost['per_million']:,.2f}** |"
        )
    merge, move = (removal_cost(cases[c], STAGE_PATH, prices) for c in ("merge", "move"))
    merging = _function_cost(cases["merge"], ("merge",))
    return f"""
### Contacts leaving the funnel: a merged visitor's removal

On moto, the tracking, aggregation, merge, stage and metrics functions hosted as deployed
(`bench/funnel_exits.py`), the contacts table's streams delivered and the metrics function's bus rule (its
pattern as deployed, a queue target) handed on as EventBridge hands it. {n} users arrive identified (leads),
then three changes for every contact, each measured apart; per contact, the stage function and the metrics
function (tracking and aggregation cost the same in every row; the identity merge itself is the merge
function's: {merging["dynamodb"]:.0f} requests, {merging["wru"]:.0f} WRU per merge, with or without the removal):

| change | stage function requests | metrics function requests | counted by the metrics | DynamoDB requests | WRU | RRU | estimated per million |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

- **A visitor merged away costs about what an ordinary stage move costs**: {merge["dynamodb"]:.0f} requests, {merge["wru"]:.0f} WRU,
  {merge["rru"]:.0f} RRU and one event against {move["dynamodb"]:.0f}, {move["wru"]:.0f}, {move["rru"]:.0f} and {move["events"]:.0f} for a purchase's move:
  the removal written with the profile's mark (a transaction of 2 items), its outbox read by key, published
  (`PutEvents`, `ContactRemoved` alone: the user it joined does not move) and marked, then counted once by
  the metrics function (its marker and counter rows in one transaction). The merge's later write to the
  visitor's profile (marking it complete) is the merge's own, so the stage function is handed the claim
  alone (this bench found it handed a second, older image too, which cost a refused transaction and a read
  per merge: 7 requests, 18 WRU, 3 RRU). A move also announces its quarter change, so it publishes two
  events where the removal publishes one.
- **Estimated cost** (list prices, us-east-1: DynamoDB on-demand, EventBridge per event, the metrics
  function's invocation; its Lambda time aside): about **${merge["per_million"]:,.2f} per million merges**, on top of
  the merge itself.
"""


# --- 6. the metrics back-fill ----------------------------------------------------------------------------------


def history_estimate(
    run: Mapping[str, Any], moto: Mapping[str, Any], prices: Prices = PRICES
) -> dict[str, Any]:
    """A metrics back-fill run at ``run``'s size: write units from moto's per transaction item, the scan's
    read units, each segment's duration (CPU at the function's share of a vCPU, plus assumed waits), and
    its cost."""
    from infra.wiring import METRICS_BACKFILL, function

    spec = function("backfill_metrics")
    segments = run["segments"]
    concurrency = METRICS_BACKFILL.steps[0].each.max_concurrency
    per_item_wru = moto["wru"] / max(moto["transaction_items"], 1)
    wru = run["transaction_items"] * per_item_wru
    rru = run["scan"]["read_units"]
    waits = run["scan"]["requests"] * LATENCY.scan_page + run["transactions"] * LATENCY.transaction
    segment_seconds = lambda_seconds(run["cpu"] / segments, spec.memory_mb, waits / segments)
    waves = math.ceil(segments / concurrency)
    gb_seconds = segment_seconds * segments * spec.memory_mb / 1024
    transitions = BACKFILL_RUN_TRANSITIONS + CHILD_TRANSITIONS * segments
    dollars = {
        "DynamoDB writes": wru / 1e6 * prices.per_million_wru,
        "DynamoDB reads": rru / 1e6 * prices.per_million_rru,
        "Lambda": gb_seconds * prices.lambda_gb_second_arm
        + segments / 1e6 * prices.lambda_per_million_requests,
        "Step Functions": transitions / 1000 * prices.per_thousand_transitions,
    }
    return {
        "per_item_wru": per_item_wru,
        "wru": wru,
        "rru": rru,
        "segment_seconds": segment_seconds,
        "wall": waves * segment_seconds,
        "waves": waves,
        "concurrency": concurrency,
        "gb_seconds": gb_seconds,
        "transitions": transitions,
        "dollars": dollars,
        "total": sum(dollars.values()),
        "memory": spec.memory_mb,
        "timeout": spec.timeout_seconds,
    }


def predicted_history_requests(run: Mapping[str, Any]) -> dict[str, int]:
    """The requests the adapters send for a run the stand-in and the counted store measured: a ``Scan`` per
    page, a ``TransactWriteItems`` per entry (counted or refused)."""
    return {"Scan": run["scan"]["requests"], "TransactWriteItems": run["transactions"]}


def history_backfill_section(result: Mapping[str, Any], prices: Prices = PRICES) -> str:
    from bench.funnel_exits import MIX

    scale, predicted, moto = result["at_scale"], result["predicted"], result["moto"]
    n = scale["contacts"]
    runs = {
        "first run": scale["first"],
        "second run": scale["second"],
        "after half was counted live": scale["after_live"],
    }
    estimates = {label: history_estimate(r, moto[0], prices) for label, r in runs.items()}
    heads = " | ".join(runs)
    concurrency = estimates["first run"]["concurrency"]
    templates = "; ".join(
        f"{t['name']} {MIX[t['name']]}%: {t['entries']} entr{'y' if t['entries'] == 1 else 'ies'}, {t['items']} items ({t['bytes']:,} B)"
        for t in result["templates"]
    )

    def row(label: str, value: Any) -> str:
        return f"| {label} | " + " | ".join(value(r, estimates[k]) for k, r in runs.items()) + " |"

    rows = [
        row("history entries found; **added**", lambda r, e: f"{r['entries']:,}; **{r['added']:,}**"),
        row("entries per contact", lambda r, e: f"{r['entries'] / n:.2f}"),
        row(
            "**items read per entry** (Scan, before the filter)",
            lambda r, e: f"**{r['read'] / r['entries']:.2f}** ({r['read'] / n:.2f} a contact)",
        ),
        row(
            "Scan requests (pages of 1 MB)",
            lambda r, e: f"{r['scan']['requests']:,} ({r['scan']['requests'] / r['segments']:.0f} a segment)",
        ),
        row(
            "read units of the scan",
            lambda r, e: (
                f"{r['scan']['read_units']:,.0f} ({r['scan']['read_units'] / r['entries']:.3f} an entry)"
            ),
        ),
        row(
            "**`TransactWriteItems` per entry**; items in them",
            lambda r, e: (
                f"**{r['transactions'] / r['entries']:.2f}**; {r['transaction_items'] / r['entries']:.2f} an entry"
            ),
        ),
        row("write units (moto's per transaction item)", lambda r, e: f"{e['wru']:,.0f}"),
        row(
            "**CPU of the use case per 1,000 entries**",
            lambda r, e: (
                f"**{r['cpu_per_1000'] * 1000:.0f} ms** ({r['cpu']:.1f} s for all; {r['stand_in_seconds']:.1f} s of it the stand-in building pages)"
            ),
        ),
        row(
            f"estimated wall time ({concurrency} segments at a time)", lambda r, e: f"about {e['wall']:.0f} s"
        ),
        row("**estimated cost**", lambda r, e: f"**${e['total']:,.2f}**"),
    ]
    compare = "\n".join(
        f"| {op} | {k:,} | {moto[0]['requests'].get(op, 0):,} | {moto[1]['requests'].get(op, 0):,} |"
        for op, k in predicted_history_requests(predicted["first"]).items()
    )
    costs = "\n".join(
        f"| {service} | " + " | ".join(f"${e['dollars'][service]:,.4f}" for e in estimates.values()) + " |"
        for service in next(iter(estimates.values()))["dollars"]
    )
    first = estimates["first run"]
    return f"""
### The metrics back-fill (`metrics_backfill`), at {n:,} contacts

The population (`bench/funnel_exits.py`): template contacts tracked through the functions as deployed on
moto (tracking, aggregation, merge, stage), each partition as the system left it copied to {n:,} contacts
(the issue is silent on the mix; 30% are visitors merged away, with a removal): {templates}. The back-fill
runs the workflow's {scale["segments"]} scan segments through the real use case (`backfill_metrics`) and adapter
(`DynamoStageHistoryScan`) over a stand-in for DynamoDB's parallel Scan (`HistoryScan`: whole items to 1 MB a
page, the filter and projection after the read, read units of 4 KB halved), counting into the fake metric
store, each `record` one `TransactWriteItems` (its kept marker and an update per counter row), refused or not.

| at {n:,} contacts | {heads} |
|---|{"---|" * len(runs)}
{chr(10).join(rows)}

**A run costs the same whether it adds anything or not**: it reads the whole contacts table and sends one
transaction per history entry; a second run, or one after live counting, has every already-counted entry
refused by its marker's condition (0 added the second time, exactly the other half the third), the same
reads and requests. The write units of a refused transaction are billed here like a failed conditional
write of each item, doubled (the meter's assumption; AWS does not document it). The first run: about
{first["wru"] / n:.1f} WRU and {first["rru"] / n:.2f} RRU a contact, {first["segment_seconds"]:.0f} s a segment (at {first["memory"]} MB's share of
a vCPU, plus {LATENCY.scan_page * 1000:.0f} ms a Scan page and {LATENCY.transaction * 1000:.0f} ms a transaction; timeout {first["timeout"]} s).

**On moto, at {moto[0]["contacts"]:,}**: the same population's items in the contacts table, the workflow run twice
by the local runner with `backfill_metrics` hosted as deployed: {moto[0]["entries"]:,} entries found, {moto[0]["counted"]:,}
then {moto[1]["counted"]:,} added, {moto[0]["scanned"]:,} items read; {moto[0]["wru"] / max(moto[0]["transaction_items"], 1):.1f} WRU a transaction item both times
({moto[0]["wru"]:,.0f} and {moto[1]["wru"]:,.0f}), {moto[0]["rru"]:.0f} RRU of scan against the stand-in's {predicted["first"]["scan"]["read_units"]:.0f}. Requests, the
prediction of the stand-in and counted store on the same {predicted["contacts"]:,} beside moto's:

| request | predicted | moto, first run | moto, second run |
|---|---|---|---|
{compare}

**Estimated cost of a run at {n:,} contacts** (list prices, us-east-1: DynamoDB on-demand, Lambda arm64 at
{first["memory"]} MB for the estimated durations, Step Functions Standard):

| | {heads} |
|---|{"---|" * len(runs)}
{costs}
| **a run** | {" | ".join(f"**${e['total']:,.2f}**" for e in estimates.values())} |

The writes dominate: {first["per_item_wru"]:.0f} WRU per transaction item, every time. A run is started by hand, once
after deployment (or to repair lost counts).
"""


# --- the section ----------------------------------------------------------------------------------------------


def run(where: str) -> str:
    from bench import backfill, campaign_planning, funnel_exits, membership, metric_reports

    started = time.perf_counter()
    runs = membership.membership_costs()
    for r in runs:
        for c in r["cases"]:
            upkeep = _function_cost(c, ("stage_transition", "timers"))
            print(
                f"segments: {r['segments']} segments, {c['case']}: {upkeep['dynamodb']:.2f} requests, "
                f"{upkeep['wru']:.2f} WRU per change; evaluation {r['evaluation']['us_per_record']:.0f} µs/record",
                flush=True,
            )
    filled = backfill.run()
    scale = filled["at_scale"]
    print(
        f"segments: back-fill at {scale['contacts']:,}: {scale['read'] / scale['contacts']:.2f} items read, "
        f"{scale['changed']:,} changed, {scale['cpu_per_1000']:.2f} s CPU per 1,000; moto "
        f"{filled['moto']['requests']} vs predicted {filled['predicted']['requests']}",
        flush=True,
    )
    planned = campaign_planning.run()
    for r in planned["at_scale"]:
        print(
            f"segments: campaign at {r['recipients']:,}, {r['rate']:,}/min: {r['runs']} runs, "
            f"{r['holdout_share']:.2%} held out, {r['cpu_per_1000'] * 1000:.0f} ms CPU per 1,000",
            flush=True,
        )
    print(f"segments: campaign on moto: {planned['moto']['requests']}", flush=True)
    reports = metric_reports.report_costs()
    for r in reports["reports"]:
        print(
            f"segments: metrics {r['report']} by {r['period']}: {r['requests']}, {r['rru']} RRU", flush=True
        )
    exits = funnel_exits.run()
    for c in exits["removal"]["cases"]:
        cost = removal_cost(c, funnel_exits.STAGE_PATH)
        print(
            f"segments: funnel exits, {c['case']}: {cost['dynamodb']:.2f} requests, {cost['wru']:.1f} WRU, "
            f"handed {c['handed']}",
            flush=True,
        )
    for label in ("first", "second", "after_live"):
        r = exits["at_scale"][label]
        print(
            f"segments: metrics back-fill {label}: {r['entries']:,} entries, {r['added']:,} added, "
            f"{r['scan']['requests']} pages, {r['transactions']:,} transactions",
            flush=True,
        )
    print(
        f"segments: metrics back-fill on moto: {[m['requests'] for m in exits['moto']]} vs predicted "
        f"{predicted_history_requests(exits['predicted']['first'])}",
        flush=True,
    )
    minutes = (time.perf_counter() - started) / 60
    return f"""
Measured by `python -m bench segments` (also part of `make bench`) on {where}; the section took {minutes:.0f}
minutes here. Counts are per unit of work within one run and do not depend on the machine; CPU figures are
this machine's, whose two CPUs are shared with other work (they vary by a third from run to run).

{membership_section(runs)}
{backfill_section(filled)}
{campaigns_section(planned)}
{metrics_section(reports)}
{removal_section(exits["removal"])}
{history_backfill_section(exits)}
"""
