"""Scheduled functions, locally: fired on the local clock, in order, including when it jumps ahead.

EventBridge invokes them asynchronously: a run that raises is retried (Lambda's ``retry_attempts``),
then its event and error go to the on-failure destination, and the schedule goes on.

A job that only runs what an index says is due (the timer function) may say when it next has work
(``idle_until``): the runs before then would read nothing and do nothing, so they are counted as fired
without being invoked. Five simulated years of hourly runs then take seconds, not 43,800 invocations.

A job each of whose runs covers everything before it (the nightly analytics pass scores every customer
from their whole history) may be ``coalesced``: when the clock jumps past several of its times, only the
last of them runs, and the others are counted as skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.local.asynchronous import invoke_asynchronously
from shared.clock import ControlledClock


@dataclass
class Job:
    name: str
    every: timedelta
    invoke: Callable[[dict[str, Any]], Any]
    next_at: datetime
    retry_attempts: int = 2
    on_failure: Callable[[dict[str, Any]], Any] | None = None
    #: the earliest moment the job can have work (None: none at all); earlier runs are idle
    idle_until: Callable[[], datetime | None] | None = None
    #: of several runs due at once (the clock jumped), only the last one runs
    coalesce: bool = False


class LocalScheduler:
    def __init__(self, clock: ControlledClock, *, after_work: Callable[[], Any] = lambda: None) -> None:
        self._clock = clock
        self._jobs: list[Job] = []
        self._lock = threading.RLock()
        #: called after a run that did something (its effects reach stream triggers before the next run)
        self._after_work = after_work
        self.fired: dict[str, int] = {}
        #: of those, runs not invoked because the job had nothing due (``idle_until``)
        self.skipped: dict[str, int] = {}
        #: on-failure records of runs that failed every attempt
        self.dead_letters: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        every: timedelta,
        invoke: Callable[[dict[str, Any]], Any],
        *,
        retry_attempts: int = 2,
        on_failure: Callable[[dict[str, Any]], Any] | None = None,
        idle_until: Callable[[], datetime | None] | None = None,
        first_at: datetime | None = None,
        coalesce: bool = False,
    ) -> None:
        """Run ``invoke`` every ``every``, first at ``first_at`` (a schedule at a fixed hour) or ``every``
        from now (a rate)."""
        with self._lock:
            next_at = first_at if first_at is not None else self._clock.now() + every
            self._jobs.append(
                Job(name, every, invoke, next_at, retry_attempts, on_failure, idle_until, coalesce)
            )
            self.fired[name] = 0

    def run_until(self, until: datetime) -> int:
        """Fire, in time order, every occurrence due up to ``until``, with the clock at each one."""
        fired = 0
        with self._lock:
            while self._jobs:
                job = min(self._jobs, key=lambda j: j.next_at)
                if job.next_at > until:
                    break
                skipped = self._idle_runs(job, until)
                if job.coalesce:  # every run due by ``until`` but the last
                    skipped = (until - job.next_at) // job.every
                if skipped:
                    job.next_at += job.every * skipped
                    self.fired[job.name] += skipped
                    self.skipped[job.name] = self.skipped.get(job.name, 0) + skipped
                    fired += skipped
                    continue
                self._clock.reach(job.next_at)
                result = self._invoke(job)
                if not isinstance(result, dict) or any(result.values()):
                    self._after_work()
                self.fired[job.name] += 1
                job.next_at += job.every
                fired += 1
        return fired

    def _idle_runs(self, job: Job, until: datetime) -> int:
        """How many of the job's next runs would find nothing to do: those before its earliest work and
        before any other job's next working run (whose writes could give it work), up to ``until``. Another
        job that is idle itself bounds nothing before its own earliest work: an hourly timer job and a
        campaign job run every minute, both idle, skip years together, not an hour at a time."""
        if job.idle_until is None:
            return 0
        earliest = job.idle_until()
        bounds = [bound for j in self._jobs if j is not job and (bound := self._next_work(j)) is not None]
        if earliest is not None:
            bounds.append(earliest)
        by_until = (until - job.next_at) // job.every + 1
        if not bounds:
            return by_until
        limit = min(bounds)
        if job.next_at >= limit:
            return 0
        return min(by_until, -((job.next_at - limit) // job.every))  # the runs strictly before ``limit``

    @staticmethod
    def _next_work(job: Job) -> datetime | None:
        """When the job's next run can do something: its next run, or for a job that knows when its work
        comes (``idle_until``) the first run at or after that (None: it has none at all)."""
        if job.idle_until is None:
            return job.next_at
        earliest = job.idle_until()
        if earliest is None:
            return None
        return max(job.next_at, earliest)

    def advance(self, target: datetime) -> int:
        """Move the clock to ``target``, firing whatever would have fired in between."""
        fired = self.run_until(target)
        self._clock.reach(target)
        return fired

    def run(self, stop: threading.Event, every: float = 1.0) -> None:
        while not stop.wait(every):
            try:
                self.run_until(self._clock.now())
            except Exception as exc:  # keep the local stack alive
                print(f"[local] scheduler: {exc!r}")

    def _invoke(self, job: Job) -> Any:
        """One asynchronous invocation: the first attempt and Lambda's retries, then the on-failure record."""
        result, failure = invoke_asynchronously(
            job.name, job.invoke, self._event(job), retry_attempts=job.retry_attempts
        )
        if failure is not None:
            self.dead_letters.append(failure)
            if job.on_failure is not None:
                job.on_failure(failure)
        return result

    def _event(self, job: Job) -> dict[str, Any]:
        """The event EventBridge hands a scheduled function."""
        return {
            "version": "0",
            "id": f"local-{job.name}-{job.next_at.timestamp():.0f}",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": job.next_at.isoformat(),
            "resources": [f"arn:aws:events:local:000000000000:rule/{job.name}"],
            "detail": {},
        }
