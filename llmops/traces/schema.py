"""The ingest wire format, validated with msgspec (no DRF serializer on the hot path).

The envelope is decoded first with each item left as raw bytes, then every item on its own,
so one bad item becomes a per-item error with its index and the rest are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

MAX_INT = 2**31 - 1

Text200 = Annotated[str, Meta(min_length=1, max_length=200)]


class PromptRef(msgspec.Struct):
    name: Text200
    version: Annotated[int, Meta(ge=1, le=MAX_INT)]


class GenerationIn(msgspec.Struct):
    external_id: Text200
    model: Text200
    input: Any
    output: Any
    created_at: datetime | None = None
    prompt: PromptRef | None = None
    trace_id: Annotated[str, Meta(max_length=200)] | None = None
    context: Any = None
    tool_calls: Any = None
    metadata: dict[str, Any] | None = None
    tags: Annotated[list[Annotated[str, Meta(max_length=100)]], Meta(max_length=50)] | None = None
    user_ref: Annotated[str, Meta(max_length=200)] | None = None
    latency_ms: Annotated[float, Meta(ge=0, le=MAX_INT)] | None = None
    input_tokens: Annotated[int, Meta(ge=0, le=MAX_INT)] | None = None
    output_tokens: Annotated[int, Meta(ge=0, le=MAX_INT)] | None = None
    cost_usd: Annotated[float, Meta(ge=0, le=1e7)] | None = None
    status: Literal["ok", "error"] = "ok"
    error: Annotated[str, Meta(max_length=20000)] | None = None


class BatchIn(msgspec.Struct):
    generations: list[msgspec.Raw]


class WholeBatchIn(msgspec.Struct):
    generations: list[GenerationIn]


batch_decoder = msgspec.json.Decoder(BatchIn)
item_decoder = msgspec.json.Decoder(GenerationIn)
whole_batch_decoder = msgspec.json.Decoder(WholeBatchIn)
json_encoder = msgspec.json.Encoder()
