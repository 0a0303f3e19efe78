"""Issue 13's section of BENCHMARKS.md: segments, back-fills, campaigns and lifecycle metrics, in requests,
items and capacity units per unit of work (counts within one run; CPU where it says so), with estimated
costs at list prices.

1. ``bench.membership``: membership upkeep per contact change, through the functions as deployed on moto.
2. ``bench.backfill``: the contacts back-fill at 100,000 contacts in-process, confirmed on moto.
3. ``bench.campaign_planning``: campaign send planning at 100,000 recipients in-process, confirmed on moto.
4. ``bench.metric_reports``: each ``/admin/metrics`` report through the admin handler on moto.

``python -m bench segments`` runs this section alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.nightly import FULL_CPU_MB, Prices, _price

#: list prices, us-east-1 (the nightly section's)
PRICES = Prices()


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
  segment's filter, per record through the stage handler (a quiet batch delivered again, no request made):

  | {heads} |
  |{"---|" * len(runs)}
  | {cpu} |

- **Entering or leaving a segment** is a move: the contact read again (`GetItem`), its outbox read (`Query`),
  one transaction with the profile, the membership item and the announcement, then the announcement
  published (`PutEvents`) and marked (a second transaction). The same with 10 or 100 segments stored; with
  none, the same change writes nothing. A due-time departure is the timer function's: its due read (a
  `Query` of each of the {shards} due-index shards, for all the contacts due at once) and the same move.
- **The segment book** (every segment's current version, one `Query` of the config table) is read once per
  function instance per `rulesCacheSeconds` (30 s) and kept compiled: {books}. Reads of the config table
  in the runs above (all contacts together): {", ".join(f"{r['segments']} segments: {sum(_function_cost(c, upkeep)['config_reads'] for c in r['cases'])}" for r in runs)}.
- **Estimated cost** (list prices, us-east-1; an estimate): a contact entering or leaving a segment,
  {enter_cost["wru"]:.0f} WRU + {enter_cost["rru"]:.1f} RRU + {enter_cost["events"]:.0f} event, about
  **${per_million:,.2f} per million moves**; a change that moves nothing, no request, and with 100 segments
  {extra_us:,.0f} µs more CPU in the stage function ({memory} MB, arm64): about
  **${quiet_per_million:,.3f} per million changes**.
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


# --- the section ----------------------------------------------------------------------------------------------


def run(where: str) -> str:
    from bench import membership, metric_reports

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
    reports = metric_reports.report_costs()
    for r in reports["reports"]:
        print(
            f"segments: metrics {r['report']} by {r['period']}: {r['requests']}, {r['rru']} RRU", flush=True
        )
    minutes = (time.perf_counter() - started) / 60
    return f"""
Measured by `python -m bench segments` (also part of `make bench`) on {where}; the section took {minutes:.0f}
minutes here. Counts are per unit of work within one run; CPU figures are this machine's.

{membership_section(runs)}
{metrics_section(reports)}
"""
