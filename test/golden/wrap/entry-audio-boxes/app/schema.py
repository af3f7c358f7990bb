"""Request and response models, inferred by `mlship wrap` from example.json.

Edit them freely: a wrong type or shape is answered with 422 and the field at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app import settings
from app.media import FILE_FIELDS

EXAMPLE: dict[str, Any] = json.loads((Path(__file__).parent / "example.json").read_text())


class PredictRequest(BaseModel):
    # NaN, Infinity and numbers too large for a float are a 422 naming the field; set
    # allow_inf_nan=True (mlship wrap --allow-non-finite) for a model that expects NaN as missing.
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE]},
    )

    # Outside [0, 1]: 422 naming the field (ranges: in mlship.yaml).
    threshold: float = Field(ge=0, le=1)
    # A file (app/media.py): base64 or an allow-listed s3:// / https:// reference in JSON, or a part.
    sound: str = Field(json_schema_extra=FILE_FIELDS["sound"].openapi())
    # A file (app/media.py): base64 or an allow-listed s3:// / https:// reference in JSON, or a part.
    photo_1: str = Field(alias="photo-1", json_schema_extra=FILE_FIELDS["photo-1"].openapi())
    # A file (app/media.py): base64 or an allow-listed s3:// / https:// reference in JSON, or a part.
    notes: str = Field(json_schema_extra=FILE_FIELDS["notes"].openapi())


class PredictResponse(BaseModel):
    prediction: Any


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Annotated[list[PredictRequest], Field(min_length=1, max_length=settings.MAX_BATCH_INPUTS)]


class BatchResponse(BaseModel):
    predictions: list[Any]


def to_input(request: PredictRequest) -> Any:
    """What the user's function receives: the request as a dict, files as app/media.py made them."""
    return {
        "threshold": request.threshold,
        "sound": request.sound,
        "photo-1": request.photo_1,
        "notes": request.notes,
    }
