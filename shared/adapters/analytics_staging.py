"""The staging bucket (S3): the files the nightly job's steps hand on, gzipped JSON, validated when read.

Keys follow the contract with the workflow (``shared.usecases.analytics.purchases_key`` and
``scores_key``); saving again overwrites, so a retried step leaves one file. The bucket expires them.
"""

from __future__ import annotations

import gzip
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.adapters.dynamodb import error_code
from shared.errors import InvalidRequest
from shared.usecases.analytics import StagedPurchases, StagedScores, purchases_key, scores_key

M = TypeVar("M", bound=BaseModel)
#: gzip's level: the files are written once and read once, in the same night
COMPRESSION = 5
_MISSING = frozenset({"NoSuchKey", "404"})


class S3Staging:
    def __init__(self, client: Any, *, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def save_purchases(self, staged: StagedPurchases) -> str:
        return self._put(purchases_key(staged.day, staged.segment, staged.segments), staged)

    def purchases(self, day: date, segment: int, segments: int) -> StagedPurchases | None:
        return self._get(purchases_key(day, segment, segments), StagedPurchases)

    def save_scores(self, staged: StagedScores) -> str:
        return self._put(scores_key(staged.day, staged.part), staged)

    def scores(self, key: str) -> StagedScores | None:
        return self._get(key, StagedScores)

    def _put(self, key: str, staged: BaseModel) -> str:
        body = gzip.compress(staged.model_dump_json().encode(), compresslevel=COMPRESSION)
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/gzip")
        return key

    def _get(self, key: str, model: type[M]) -> M | None:
        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
        try:
            return model.model_validate_json(gzip.decompress(answer["Body"].read()))
        except (ValidationError, OSError, EOFError) as exc:
            raise InvalidRequest(f"{key} is not a staged {model.__name__} file: {_first(exc)}") from None


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
    return type(exc).__name__
