"""What every sender returns or raises."""

from __future__ import annotations


class DeliveryError(Exception):
    """An attempt failed; ``response_code`` is the receiver's status where it answered."""

    def __init__(self, message: str, response_code: int | None = None) -> None:
        super().__init__(message)
        self.response_code = response_code
