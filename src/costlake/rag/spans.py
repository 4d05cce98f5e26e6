"""Text rewrites the grounding check makes, done with `str.find` and slices instead of a regex scan."""

from __future__ import annotations

import re
import string

#: `\w` in an ASCII text
ASCII_WORD = frozenset(string.ascii_letters + string.digits + "_")


def without_ascii_name(text: str, lowered: str, name: str) -> str:
    """`text` (ASCII, `lowered` its lower case) with `name` (ASCII, lower case) replaced by " " where the
    name's pattern (`ContextFacts._name_patterns`) matches, found with `str.find`: not after a word
    character, "$", "." or ",", not before a word character; left to right, without overlaps."""
    parts, start, at = [], 0, lowered.find(name)
    while at >= 0:
        end = at + len(name)
        before, after = text[at - 1 : at], text[end : end + 1]  # "" at either end of the text
        if (not before or before not in ASCII_WORD and before not in "$.,") and after not in ASCII_WORD:
            parts += [text[start:at], " "]
            start, at = end, lowered.find(name, end)
        else:
            at = lowered.find(name, at + 1)
    return "".join(parts) + text[start:] if parts else text


def replaced(text: str, matches: list[re.Match[str]]) -> str:
    """`pattern.sub(" ", text)` from the matches `pattern.finditer(text)` found."""
    if not matches:
        return text
    parts, start = [], 0
    for match in matches:
        parts += [text[start : match.start()], " "]
        start = match.end()
    return "".join(parts) + text[start:]
