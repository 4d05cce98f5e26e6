"""What a question asks that the filters cannot say, refused rather than left unread: a service
name that matches no service, and something to leave out.

Left unread, "how much did we spend on amazonfoo last month?" was answered for every service, as if
it had named none. Only words that start like a cloud vendor's service name ("amazon…", "aws…") are
judged, after the services the lake knows (and their common names) were read.

>>> refuse_unread_names("how much did we spend on amazonfoo")
Traceback (most recent call last):
...
costlake.errors.InputError: no service is named 'amazonfoo' (services are named as the lake lists them)
"""

from __future__ import annotations

import re

from costlake.errors import InputError
from costlake.rag.service_words import WORD_END, WORD_START

_SERVICE_LIKE = re.compile(r"(?<![a-z0-9])(?:amazon|aws)[a-z0-9]{2,}(?![a-z0-9])")


def refuse_unread_names(masked: str) -> None:
    """Refuse a service name `masked` (the question lower-cased, what was read blanked) still holds."""
    if m := _SERVICE_LIKE.search(masked):
        raise InputError(
            f"no service is named '{m.group(0)[:64]}' (services are named as the lake lists them)"
        )


# Words that leave something out of a question: the filters only name what to include, so "everything
# except EC2" was answered for EC2 alone.
_EXCLUDE = re.compile(
    WORD_START
    + r"(?:except|excluding|exclude[sd]?|other\s+than|not\s+counting|apart\s+from|aside\s+from"
    + r"|but\s+not|leaving\s+out|leave\s+out|left\s+out|minus|omitting|omit)"
    + WORD_END
)


def refuse_exclusions(masked: str, original: str) -> None:
    """Refuse a question that asks to leave a service, an account or a period out (`masked`: the
    question lower-cased, what was read blanked; `original`: as asked, character for character)."""
    m = _EXCLUDE.search(masked)
    if m is not None:
        shown = original[m.start() : m.end() + 40].split(",")[0].split("?")[0].strip()
        raise InputError(
            f"'{shown}': a question that leaves something out is not answered (the filters name only what "
            "to include); ask about the services, accounts or days to include"
        )
