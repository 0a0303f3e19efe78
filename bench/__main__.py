"""Run every benchmark and write the results into BENCHMARKS.md."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
# The handlers' observability is measured off: no X-Ray daemon here, and EMF lines would flood the output.
os.environ.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(name, "bench")

from bench import tracking  # noqa: E402
from bench.harness import machine, write_section  # noqa: E402


def main() -> int:
    where = machine()
    print(f"machine: {where}", flush=True)

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
{cpu['cpu_us_per_event']:.0f} µs CPU per event, {cpu['ratio_to_json_roundtrip']:.1f}× the CPU of a bare `json.loads` + `json.dumps` of the same body (same run).

**DynamoDB requests per accepted event** (counted on the botocore client, against moto):

| case | events | write requests | per event | items written per event | reads | scans |
|---|---|---|---|---|---|---|
{table}

**Cold import** (fresh interpreter, Lambda-like environment so the Tracer loads X-Ray; median of 15 alternating runs):

| what | median | ratio to `import boto3` + one DynamoDB client |
|---|---|---|
| `import boto3; boto3.client("dynamodb")` (baseline) | {imports['baseline_ms']:.0f} ms | 1.00× |
| `import functions.tracking.handler` | {imports['handler_ms']:.0f} ms | {imports['handler_ratio']:.2f}× |
| handler import + dependencies built (client, stores) | {imports['ready_ms']:.0f} ms | {imports['ready_ratio']:.2f}× |
""",
    )
    print("BENCHMARKS.md updated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
