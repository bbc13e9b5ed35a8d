"""`:streamGenerateContent` without `?alt=sse` (a JSON array stream), registered as "gemini_array"."""

from __future__ import annotations

from . import ARRAY_FORMAT

FORMAT = ARRAY_FORMAT
