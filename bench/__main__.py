"""Run every benchmark and write the results into BENCHMARKS.md.

``python -m bench local`` runs only the local stack's section, ``python -m bench capacity`` only the billed
capacity's, ``python -m bench rates`` only the rate limiter's, ``python -m bench automations`` only the
automations' and timers', ``python -m bench delivery`` only delivery's.
``python -m bench rhythm`` only the synthetic rhythm check (churn risk against BG/NBD), ``python -m bench
cdnow`` only the churn probability on CDNOW against the BTYD baselines, ``python -m bench nightly`` only the
nightly analytics job at scale. ``python -m bench segments`` only issue 13's: segments, back-fills, campaigns
and lifecycle metrics. ``python -m bench search`` only issue 14's contact search, ``python -m bench
console`` only the console's page weight, its function's cold import and the admin-API requests its
screens make. ``python -m bench recommendations`` only issue 15's recommendation quality (item-to-item
against popularity on The Complete Journey), ``python -m bench serving`` only the requests to serve
recommendations.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
# The handlers' observability is measured off: no X-Ray daemon here, and EMF lines would flood the output.
os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(name, "bench")

from bench import automations, capacity, delivery, engagement, local, rates, scoring, tracking
from bench.harness import machine, write_section


def main(sections: list[str]) -> int:
    where = machine()
    print(f"machine: {where}", flush=True)
    if sections == ["local"]:
        local_stack(where)
        print("BENCHMARKS.md updated", flush=True)
        return 0
    if sections == ["capacity"]:
        billed_capacity(where)
        print("BENCHMARKS.md updated", flush=True)
        return 0
    if sections == ["rates"]:
        rate_limits(where)
        print("BENCHMARKS.md updated", flush=True)
        return 0
    if sections == ["automations"]:
        automations_and_timers(where)
        print("BENCHMARKS.md updated", flush=True)
        return 0
    if sections == ["delivery"]:
        delivery_sends(where)
        print("BENCHMARKS.md updated", flush=True)
        return 0
    # issue 12: the churn risk on synthetic rhythms, the churn probability on CDNOW, the nightly job at scale
    analytics = {"rhythm": churn_rhythm, "cdnow": churn_on_cdnow, "nightly": nightly_at_scale}
    analytics["segments"] = segments_campaigns_metrics  # issue 13
    analytics["search"] = contact_search  # issue 14
    analytics["console"] = console_page  # issue 14
    analytics["recommendations"] = recommendation_quality  # issue 15
    analytics["serving"] = recommendation_serving  # issue 15
    analytics["recommendations_nightly"] = recommendations_nightly  # issue 15
    if len(sections) == 1 and sections[0] in analytics:
        analytics[sections[0]](where)
        print("BENCHMARKS.md updated", flush=True)
        return 0
    if sections:
        print(
            f"unknown section {sections!r}: run all of them, or one of 'local', 'capacity', 'rates', "
            "'automations', 'delivery', 'rhythm', 'cdnow', 'nightly', 'segments', 'search', 'console', "
            "'recommendations', 'serving', 'recommendations_nightly'",
            file=sys.stderr,
        )
        return 2

    cpu = tracking.handler_cpu_per_event()
    print(f"handler CPU: {cpu}", flush=True)
    writes = tracking.writes_per_event()
    for row in writes:
        print(f"writes: {row}", flush=True)
    imports = tracking.cold_import()
    print(f"cold import: {imports}", flush=True)

    table = "\n".join(
        f"| {r['case']} | {r['events']} | {r['write_requests']} | {r['write_requests_per_event']:.3f} | "
        f"{r['items_per_event']:.2f} | {r['reads']} | {r['scans']} |"
        for r in writes
    )
    write_section(
        "tracking",
        f"""
Measured by `make bench` on {where}.

**Handler CPU per event** (batch of 100 calls from 10 contacts through the real handler, DynamoDB stubbed at zero cost):
{cpu["cpu_us_per_event"]:.0f} µs CPU per event, {cpu["ratio_to_json_roundtrip"]:.1f}× the CPU of a bare `json.loads` + `json.dumps` of the same body (same run).

**DynamoDB requests per accepted event on the request path** (counted on the botocore client, against
moto): one conditional put per event, and nothing else. Requests are not what DynamoDB bills: see the
billed capacity below, where the profile writes made off the request path are counted too.

| case | events | write requests | per event | items written per event | reads | scans |
|---|---|---|---|---|---|---|
{table}

**Cold import** (fresh interpreter, Lambda-like environment so the Tracer loads X-Ray; median of 21 alternating runs):

| what | median | ratio to `import boto3` + one DynamoDB client |
|---|---|---|
| `import boto3; boto3.client("dynamodb")` (baseline) | {imports["baseline_ms"]:.0f} ms | 1.00× |
| `import functions.tracking.handler` | {imports["handler_ms"]:.0f} ms | {imports["handler_ratio"]:.2f}× |
| handler import + dependencies built (client, stores) | {imports["ready_ms"]:.0f} ms | {imports["ready_ratio"]:.2f}× |
""",
    )
    identity = tracking.identity_cpu()
    print(f"identity: {identity}", flush=True)
    identity_rows = "\n".join(
        f"| {r['case']} | {r['cpu_us_per_event']:.0f} µs | {r['ratio']:.2f}× |" for r in identity["rows"]
    )
    write_section(
        "identity",
        f"""
Measured by `make bench` on {where}.

**Verified identity on the request path** (the batch of 100 calls from 10 contacts above, every call
naming a userId, through the real handler with DynamoDB and Parameter Store stubbed at zero cost; ratios
to a browser key that does not require proof, in the same run):

| calls | CPU per event | ratio |
|---|---|---|
{identity_rows}

**Secret reads**: {identity["secret_reads"]} Parameter Store reads for {identity["requests"]} requests from
one warm instance: the secret is read when an instance first needs it and then cached for a minute, so
its cost does not grow with traffic (standard parameters are free; nothing is billed per call here).
""",
    )
    engine = scoring.engine_throughput()
    print(f"scoring engine: {engine}", flush=True)
    by_rules = scoring.handler_cpu_by_rules()
    print(f"handler by rules: {by_rules}", flush=True)
    ledger = scoring.ledger_cost()
    print(f"ledger: {ledger}", flush=True)
    rows = "\n".join(
        f"| {e['detailed']} | {e['rules']} | {e['events_per_second']:,.0f} | {e['us_per_event']:.1f} µs | "
        f"{e['ledger_lines_per_event']:.2f} | {h['cpu_us_per_event']:.0f} µs |"
        for e, h in zip(engine, by_rules, strict=True)
    )
    smallest, largest = engine[0], engine[-1]
    write_section(
        "scoring",
        f"""
Measured by `make bench` on {where}.

**Events per second through scoring** (the same 100-call batch as above; detailed rules on top of the
25 shipped general rules, shaped like a shop's: products, landing-page URL patterns, campaigns,
category equality and price thresholds):

| detailed rules | rules in all | events/s (scoring only) | CPU per event (scoring only) | ledger lines per event | CPU per event (whole handler) |
|---|---|---|---|---|---|
{rows}

From {smallest["detailed"]} to {largest["detailed"]} detailed rules ({largest["detailed"] // max(smallest["detailed"], 1)}× more),
scoring CPU per event grows {largest["us_per_event"] / smallest["us_per_event"]:.2f}× (same run), because
matching looks only at the rules indexed under the event's behaviour, keys, URL prefix and thresholds.

**Writes per event** are unchanged by scoring: the points, decaying sums and rule-limit counters ride
in the profile update that folds the events in, and the ledger rides on the event item (see the billed
capacity below, measured with the default rules active).

**Ledger cost per event** (100 detailed rules): {ledger["scored_share"]:.0%} of events scored,
{ledger["lines_per_scored_event"]:.1f} ledger lines and {ledger["ledger_bytes_per_scored_event"]:.0f} bytes of
ledger JSON per scored event, stored on the event item itself (no extra item, no extra request, no
index: the ledger is read through the event log).
""",
    )
    stream = engagement.stream_costs()
    print(f"stage function: {stream}", flush=True)
    write_section(
        "engagement",
        f"""
Measured by `make bench` on {where}.

**Writes per processed stream record** (100 contacts, the stage function fed by the contacts table's
stream on moto, every DynamoDB write request counted on the botocore client):

| records | what happens | write requests per record |
|---|---|---|
| {stream["records_entering"]} | each contact enters the funnel (stage, quarter and due time written, events announced) | {stream["writes_per_record_entering"]:.2f} (the move with its outbox, then marking it published) |
| {stream["records_quiet"]} | one more visit each: nobody moves | **{stream["writes_per_record_quiet"]:.2f}** |
| 200 | both batches delivered again | {stream["writes_replayed"] / 200:.2f} ({stream["writes_replayed"]} in all) |

**Records per second through the handler**: {stream["records_per_second_quiet"]:,.0f} records/s
({stream["us_per_record_quiet"]:.0f} µs CPU per record) for a batch of 100 where nothing changes: the
record's image is evaluated in memory, with no read and no write. Records that move a contact cost a
consistent read, one transaction and one publish; on moto that ran at
{stream["records_per_second_entering_moto"]:.0f} records/s, a figure dominated by moto itself, not a prediction for DynamoDB.
""",
    )
    billed_capacity(where)
    automations_and_timers(where)
    delivery_sends(where)
    rate_limits(where)
    churn_rhythm(where)
    churn_on_cdnow(where)
    nightly_at_scale(where)
    segments_campaigns_metrics(where)
    contact_search(where)
    console_page(where)
    recommendation_quality(where)  # issue 15
    recommendation_serving(where)  # issue 15
    local_stack(where)  # last: it starts the local stack in this process
    print("BENCHMARKS.md updated", flush=True)
    return 0


def delivery_sends(where: str) -> None:
    rows = delivery.send_costs()
    for row in rows:
        print(
            f"delivery: {row['case']}: {row['sent']}/{row['requests']} sent, "
            f"{row['dynamodb'] / row['requests']:.2f} DynamoDB requests, {row['per_second']:.0f}/s",
            flush=True,
        )
    write_section("delivery", delivery.section(where, rows))


def billed_capacity(where: str) -> None:
    rows = capacity.capacity_per_event()
    for row in rows:
        print(
            f"capacity: {row['case']}: {row['wru'] / row['events']:.2f} WRU, "
            f"{row['rru_total'] / row['events']:.2f} RRU, "
            f"{sum(row['stored'].values()) / row['events'] / 1024:.2f} KB stored per event",
            flush=True,
        )
    write_section("capacity", capacity.section(where, rows))


def automations_and_timers(where: str) -> None:
    due = automations.due_reads()
    print(
        f"timers: {due['read']['scanned']:,} index items read for "
        f"{due['due']:,} due entries ({due['ratio']:.2f}), {due['read']['queries']} queries, {due['scans']} scans; "
        f"the timer function: {due['reads'] / due['due']:.2f} reads, {due['writes'] / due['due']:.2f} writes "
        f"per due entry, {due['seconds']:.0f} s",
        flush=True,
    )
    runs = automations.write_units()
    for row in automations.differences(runs):
        print(f"automations: {row['case']}: {row['extra']:+.2f} WRU per event", flush=True)
    write_section("automations", automations.section(where, due, runs))


def rate_limits(where: str) -> None:
    rows = rates.limiter_costs()
    for row in rows:
        print(f"rates: {row}", flush=True)
    write_section("rates", rates.section(where, rows))


def local_stack(where: str) -> None:
    result = local.concurrent_batches()
    print(f"local stack: {result}", flush=True)
    write_section("local", local.section(where, result))


def churn_rhythm(where: str) -> None:
    from bench import rhythm

    write_section("rhythm", rhythm.run(where))


def churn_on_cdnow(where: str) -> None:
    """Issue 12: the churn model's probability of no purchase against the BTYD baselines on CDNOW. A missed
    goal is printed plainly; it does not fail the run."""
    from bench import cdnow

    results, params = cdnow.run()
    for line in cdnow.report_lines(results):
        print(line, flush=True)
    write_section("cdnow", cdnow.section(where, results, params))


def nightly_at_scale(where: str) -> None:
    """Issue 12: the nightly job at 100,000 and 1,000,000 customers in-process, on moto at 5,000, and the
    estimated cost of a night; it reports, it does not fail on a target."""
    from bench import nightly

    write_section("nightly", nightly.run(where))


def segments_campaigns_metrics(where: str) -> None:
    """Issue 13: membership upkeep per contact change, the contacts back-fill and campaign planning at
    100,000, metric reports per call; counts within one run, estimated costs at list prices."""
    from bench import segments

    write_section("segments", segments.run(where))


def contact_search(where: str) -> None:
    """Issue 14: contact search's requests: its upkeep per contact change, and per search."""
    from bench import contact_search as search

    write_section("contact-search", search.run(where))


def console_page(where: str) -> None:
    """Issue 14: the console's page weight, its function's cold import, the admin-API requests of its
    screens (counted in Chromium against the local stack)."""
    from bench import console

    write_section("console", console.run(where))


def recommendation_serving(where: str) -> None:
    """Issue 15: the admin function's requests to serve recommendations (per contact, per product)."""
    from bench import recommendation_serving as serving

    write_section("recommendation_serving", serving.run(where))


def recommendation_quality(where: str) -> None:
    """Issue 15: the item-to-item model against popularity on The Complete Journey (HitRate@10, NDCG@10,
    catalogue coverage, on a temporal split); a missed goal is printed plainly, it does not fail the run."""
    from bench import recommendations

    result = recommendations.run()
    for line in recommendations.report_lines(result):
        print(line, flush=True)
    write_section("recommendations", recommendations.section(where, result))


def recommendations_nightly(where: str) -> None:
    """Issue 15: the nightly recommendations pass's requests and billed capacity per contact and per product,
    and the aggregation's share (the recent products on the profile)."""
    from bench import recommendations_nightly as nightly

    nightly.run(where)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
