from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):
    """One row per /v1 request, written in batches by the recorder.

    Keys and connections are referenced by id without a foreign-key constraint so that
    deleting a key or connection keeps its history.
    """

    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=64, db_index=True)
    endpoint = models.CharField(max_length=64)
    api_key_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    connection_id = models.BigIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField()
    stream = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["provider", "created_at"]),
            models.Index(fields=["api_key_id", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.provider}/{self.model} {self.status_code}"
