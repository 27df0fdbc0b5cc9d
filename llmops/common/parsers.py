"""The API's JSON parser: DRF's, then the text every API refuses (`llmops.common.hygiene`).

It is the default parser (`REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`), so every view that
reads `request.data` gets a 400 naming the field for a NUL character, an unpaired surrogate
or a number that is not finite, before any service or the database sees it."""

from __future__ import annotations

from rest_framework import parsers

from .hygiene import check_json


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return check_json(super().parse(stream, media_type, parser_context))
