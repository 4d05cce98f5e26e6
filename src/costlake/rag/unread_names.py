"""Service names a question gives that match no service, refused rather than left unread.

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

_SERVICE_LIKE = re.compile(r"(?<![a-z0-9])(?:amazon|aws)[a-z0-9]{2,}(?![a-z0-9])")


def refuse_unread_names(masked: str) -> None:
    """Refuse a service name `masked` (the question lower-cased, what was read blanked) still holds."""
    if m := _SERVICE_LIKE.search(masked):
        raise InputError(
            f"no service is named '{m.group(0)[:64]}' (services are named as the lake lists them)"
        )
