"""Request and response models, inferred by `mlship wrap` from example.json.

Edit them freely: a wrong type or shape is answered with 422 and the field at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app import settings

EXAMPLE: dict[str, Any] = json.loads((Path(__file__).parent / "example.json").read_text())


def exact_shape(shape: tuple[int, ...]) -> AfterValidator:
    """Nested lists of exactly this shape; anything else is answered with 422."""

    def check(value: list[Any]) -> list[Any]:
        level = [value]
        for depth, size in enumerate(shape):
            if any(not isinstance(v, list) or len(v) != size for v in level):
                raise ValueError(f"expected shape {list(shape)}: dimension {depth} must have {size} items")
            level = [item for v in level for item in v]
        return value

    return AfterValidator(check)


class PredictRequest(BaseModel):
    # NaN, Infinity and numbers too large for a float are a 422 naming the field; set
    # allow_inf_nan=True (mlship wrap --allow-non-finite) for a model that expects NaN as missing.
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE]},
    )

    image: Annotated[list[list[float]], exact_shape((2, 2))]


class PredictResponse(BaseModel):
    prediction: Any


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Annotated[list[PredictRequest], Field(min_length=1, max_length=settings.MAX_BATCH_INPUTS)]


class BatchResponse(BaseModel):
    predictions: list[Any]


def to_input(request: PredictRequest) -> Any:
    """One sample of the model's input tensor."""
    return request.image
