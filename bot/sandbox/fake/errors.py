"""Error answers of the fake Bot API, with the exact texts from ``telegram-facts.md``.

Bots match on these strings (``"blocked by the user" in str(exc)``), so a typo here would let a
real-world bug slip through the tests.  Every text the fake can answer lives in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "Not Found"
CHAT_NOT_FOUND = "Bad Request: chat not found"
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
CANT_PARSE = "Bad Request: can't parse entities: "
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
DELETE_NOT_FOUND = "Bad Request: message to delete not found"
CANT_EDIT = "Bad Request: message can't be edited"
NO_TEXT_TO_EDIT = "Bad Request: there is no text in the message to edit"
NO_CAPTION_TO_EDIT = "Bad Request: there is no caption in the message to edit"
MESSAGE_TO_COPY_NOT_FOUND = "Bad Request: message to copy not found"
MESSAGE_TO_FORWARD_NOT_FOUND = "Bad Request: message to forward not found"
REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CALLBACK_ANSWER_TOO_LONG = "Bad Request: MESSAGE_TOO_LONG"
GROUP_MIGRATED = "Bad Request: group chat was upgraded to a supergroup chat"
SECRET_TOKEN_INVALID = "Bad Request: secret token contains unallowed characters"
UNSUPPORTED_PARSE_MODE = "Bad Request: unsupported parse_mode"
WRONG_ACTION = "Bad Request: wrong parameter action in request"
TEXT_BUTTONS_UNALLOWED = "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
KEYBOARD_INVALID = "Bad Request: can't parse reply keyboard markup JSON object"
BOT_COMMAND_INVALID = "Bad Request: BOT_COMMAND_INVALID"
BOT_COMMAND_DESCRIPTION_INVALID = "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"
PHOTO_MISSING = "Bad Request: there is no photo in the request"
DOCUMENT_MISSING = "Bad Request: there is no document in the request"
WRONG_FILE_ID = "Bad Request: wrong file identifier/HTTP URL specified"
INVALID_FILE_ID = "Bad Request: invalid file_id"

BLOCKED = "Forbidden: bot was blocked by the user"
NOT_STARTED = "Forbidden: bot can't initiate conversation with a user"
DEACTIVATED = "Forbidden: user is deactivated"
KICKED = "Forbidden: bot was kicked from the group chat"
KICKED_SUPERGROUP = "Forbidden: bot was kicked from the supergroup chat"

CONFLICT_POLLING = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
INTERNAL_SERVER_ERROR = "Internal Server Error"
BAD_GATEWAY = "Bad Gateway"


def too_many_requests(retry_after: int) -> str:
    """The 429 text; ``retry_after`` is repeated in ``parameters.retry_after``."""
    return f"Too Many Requests: retry after {retry_after}"


#: What ``fail_next(method, status)`` answers when no description is given.  For 400 and 403 the most
#: common real-world cause is used ("chat not found", "blocked by the user") so injected failures look
#: like the ones bots meet in production.
DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: CHAT_NOT_FOUND,
    401: UNAUTHORIZED,
    403: BLOCKED,
    404: NOT_FOUND,
    409: CONFLICT_POLLING,
    500: INTERNAL_SERVER_ERROR,
    502: BAD_GATEWAY,
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class ApiError(Exception):
    """Raised inside a method implementation; turned into ``{"ok": false, ...}`` with the same status."""

    status: int
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.description}")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


def bad_request(description: str) -> ApiError:
    return ApiError(400, description)


def default_description(status: int, retry_after: int | None = None) -> str:
    """Description for an injected failure of ``status``."""
    if status == 429:
        return too_many_requests(retry_after or 1)
    if status in DEFAULT_DESCRIPTIONS:
        return DEFAULT_DESCRIPTIONS[status]
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return f"Error {status}"
