"""The per-request limits every protocol enforces, taken from the settings once."""

from __future__ import annotations

from dataclasses import dataclass

from ml_api.settings import OutOfRangePolicy, Settings


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one request may ask.

    Attributes:
        max_body_bytes: Largest request body, in bytes (``ML_API_MAX_BODY_BYTES``); 413 beyond.
        max_instances: Most instances in one request (``ML_API_MAX_INSTANCES``); 413 beyond.
        request_timeout_seconds: Longest a prediction request may run, in seconds
            (``ML_API_REQUEST_TIMEOUT_SECONDS``); 504 beyond.
        out_of_range: What a numeric value outside its training range gets
            (``ML_API_OUT_OF_RANGE``: ``accept``, ``warn`` or ``reject``; see
            ``ml_api.core.model.ranges``).
    """

    max_body_bytes: int
    max_instances: int
    request_timeout_seconds: float
    out_of_range: OutOfRangePolicy = "warn"

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """Take the limits from ``settings``."""
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_instances=settings.max_instances,
            request_timeout_seconds=settings.request_timeout_seconds,
            out_of_range=settings.out_of_range,
        )

    def as_dict(self) -> dict[str, int | float | str]:
        """Return the JSON form shown in ``GET /metadata`` (keys in this order)."""
        return {
            "max_body_bytes": self.max_body_bytes,
            "max_instances": self.max_instances,
            "request_timeout_seconds": self.request_timeout_seconds,
            "out_of_range": self.out_of_range,
        }
