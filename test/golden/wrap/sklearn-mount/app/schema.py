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


def hint(minimum: float | None, maximum: float | None) -> dict[str, Any]:
    """A range the front end shows (x-mlship-range), not a limit: values outside it are accepted.

    Make it one with Field(ge=..., le=...): published as minimum/maximum, and 422 outside.
    """
    bounds = {"minimum": minimum, "maximum": maximum}
    return {"x-mlship-range": {k: v for k, v in bounds.items() if v is not None}}


class PredictRequest(BaseModel):
    # NaN, Infinity and numbers too large for a float are a 422 naming the field; set
    # allow_inf_nan=True (mlship wrap --allow-non-finite) for a model that expects NaN as missing.
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE]},
    )

    # [4.3, 7.9]: seen in the examples; shown by the front end, not enforced.
    sepal_length: float = Field(json_schema_extra=hint(4.3, 7.9))
    # Outside [0, 10]: 422 naming the field (ranges: in mlship.yaml).
    sepal_width: float = Field(ge=0, le=10)
    petal_length: float
    # [0.1, inf]: "petal_width" in mlship.yaml, strict: false; shown by the front end, not enforced.
    petal_width: float = Field(json_schema_extra=hint(0.1, None))


class PredictResponse(BaseModel):
    prediction: Any


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Annotated[list[PredictRequest], Field(min_length=1, max_length=settings.MAX_BATCH_INPUTS)]


class BatchResponse(BaseModel):
    predictions: list[Any]


def to_input(request: PredictRequest) -> Any:
    """One row of the model's input: the fields in example order, lists flattened."""
    row: list[Any] = []
    row.append(request.sepal_length)
    row.append(request.sepal_width)
    row.append(request.petal_length)
    row.append(request.petal_width)
    return row
