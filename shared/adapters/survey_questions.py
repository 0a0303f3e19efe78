"""Issue 15: a survey's question, for its answer page (the preferences function), read from its template.

A survey is an email template with ``survey: {"question": ...}``, and the survey's id is the template's
(``shared.delivery.templates``). The page reads the template's current version alone, where the template
store keeps it (config table, pk ``TEMPLATES``, sk the id: ``shared.adapters.template_store``), with one
GetItem, and validates the question only (``shared.delivery.surveys.SurveyOfTemplate``): the preferences
function has no template engine, and loads none to show a question. A question is kept for
``cache_seconds``, as delivery keeps a template, so a survey's page asks within that time what its
template now asks. A read failure raises (the page then asks the standard question) and is not kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.adapters.dynamodb import failure, retried, s
from shared.adapters.expiring import Expiring
from shared.delivery.surveys import SurveyOfTemplate

#: the partition of every template's current version (``DynamoTemplateStore.current_partition``; a
#: deleted template has none there, only its tombstone in its history)
CURRENT_TEMPLATES = "TEMPLATES"
_WHAT = "the survey questions"


class DynamoSurveyQuestions:
    """``DynamoSurveyQuestions(client, table=..., cache_seconds=30, monotonic=time.monotonic)``."""

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        cache_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db, self._table = client, table
        self._cache_seconds, self._monotonic = cache_seconds, monotonic
        # by survey id: ids come from signed links only, so these are the surveys actually sent
        self._by_survey: dict[str, Expiring[str | None]] = {}

    def question(self, survey_id: str) -> str | None:
        """The survey template's question; None: no such template (never stored, or deleted), or a template
        without a survey. Read again at most every ``cache_seconds``."""
        found = self._by_survey.get(survey_id)
        if found is None:
            found = self._by_survey[survey_id] = Expiring(self._cache_seconds, self._monotonic)
        return found.get(lambda: self._read(survey_id))

    def _read(self, survey_id: str) -> str | None:
        key = {"pk": s(CURRENT_TEMPLATES), "sk": s(survey_id)}
        try:
            item = retried(
                # eventually consistent (half the read): a page a second behind an edit asks the same
                lambda: self._db.get_item(TableName=self._table, Key=key, ProjectionExpression="body"),
                _WHAT,
            ).get("Item")
        except Exception as exc:
            raise failure(exc, _WHAT) from exc
        if not item:
            return None
        survey = SurveyOfTemplate.model_validate_json(item["body"]["S"]).survey
        return survey.question if survey is not None else None
