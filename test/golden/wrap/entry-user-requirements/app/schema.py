"""Request and response models, inferred by `mlship wrap` from example.json.

Edit them freely: a wrong type or shape is answered with 422 and the field at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app import settings

EXAMPLE: dict[str, Any] = json.loads((Path(__file__).parent / "example.json").read_text())


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [EXAMPLE]}
    )

    x: float
    delay: float
    class_: str = Field(alias="class")
    tags: Annotated[list[str], Field(min_length=2, max_length=2)]
    meta: dict[str, Any]
    missing: Any


class PredictResponse(BaseModel):
    prediction: Any


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Annotated[list[PredictRequest], Field(min_length=1, max_length=settings.MAX_BATCH_INPUTS)]


class BatchResponse(BaseModel):
    predictions: list[Any]


def to_input(request: PredictRequest) -> Any:
    """What the user's function receives: the validated request as a dict."""
    return request.model_dump(by_alias=True)
