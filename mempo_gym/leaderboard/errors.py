"""The one error a submission check raises: a rejection naming the member and field."""

from __future__ import annotations


class SubmissionRejected(ValueError):
    """A submission that is malformed, tampered with, unsafe, or inconsistent.

    Attributes:
        reason: what is wrong, in words.
        member: the archive member concerned (``None`` for the archive itself).
        field: the field or location inside the member (e.g. ``"line 3: tokens_total"``).
    """

    def __init__(self, reason: str, *, member: str | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.member = member
        self.field = field
        where = ""
        if member is not None:
            where = f"member {member!r}"
            if field is not None:
                where += f", {field}"
            where += ": "
        elif field is not None:
            where = f"{field}: "
        super().__init__(f"submission rejected: {where}{reason}")
