"""Request and response models. The request model is yours (app/user_schema.py, Flower).

A request that does not fit it is answered with 422 and the field at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app import settings
from app.user_schema import Flower

EXAMPLE: dict[str, Any] = json.loads((Path(__file__).parent / "example.json").read_text())


class PredictRequest(Flower):
    # NaN, Infinity and numbers too large for a float are a 422 naming the field; set
    # allow_inf_nan=True (mlship wrap --allow-non-finite) for a model that expects NaN as missing.
    model_config = ConfigDict(allow_inf_nan=False)


class PredictResponse(BaseModel):
    prediction: Any


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Annotated[list[PredictRequest], Field(min_length=1, max_length=settings.MAX_BATCH_INPUTS)]


class BatchResponse(BaseModel):
    predictions: list[Any]


def to_input(request: PredictRequest) -> Any:
    """Your model's own to_input() when it has one; otherwise its values in field order, lists flattened."""
    if hasattr(request, "to_input"):
        return request.to_input()
    row: list[Any] = []
    for value in request.model_dump().values():
        if isinstance(value, list):
            row.extend(value)
        else:
            row.append(value)
    return row
