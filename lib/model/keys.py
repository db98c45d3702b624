"""Secret keys: judge whether a key a person typed is random enough to sign cookies or the audit chain with.

A key only has to be long to pass a length check; `aaaa...`, `0000...` and `passwordpassword...` are long
and guessable. `weakness` names what gives a key away: a repeated pattern, dictionary words making up most
of it, a single kind of character, or too little entropy (estimated from how varied its characters are,
so an honest estimate for random keys and a generous one for typed ones). Standard library only: the
settings module and the login gate's checks use it before anything heavy loads.
"""
from __future__ import annotations

import math
import re
from collections import Counter

MIN_BITS = 128
# Words people put in keys; a key made mostly of these is guessed from a list, however long.
WORDS = ("password", "passwd", "changeme", "change", "secret", "letmein", "streamlit", "cookie", "admin",
         "default", "example", "sample", "signature", "qwerty", "welcome", "test", "token", "key", "pass")
_WORD = re.compile("|".join(sorted(WORDS, key=len, reverse=True)))
_SEPARATORS = re.compile(r"[\s_.\-:/]+")
HOW_TO = 'make one with `python -c "import secrets; print(secrets.token_urlsafe(48))"`'


def classes(key: str) -> int:
    """Return how many kinds of character a key uses: lower case, upper case, digits, others."""
    return sum((any(c.islower() for c in key), any(c.isupper() for c in key), any(c.isdigit() for c in key),
                any(not c.isalnum() for c in key)))


def bits(key: str) -> float:
    """Return an estimate of a key's entropy in bits: its length times the spread of its characters."""
    if not key:
        return 0.0
    counts = Counter(key)
    spread = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    return spread * len(key)


def _period(key: str) -> int | None:
    """Return the length of a pattern the whole key repeats (at least twice), or None."""
    for size in range(1, len(key) // 2 + 1):
        if all(key[i] == key[i % size] for i in range(size, len(key))):
            return size
    return None


def weakness(key: str) -> str | None:
    """Return why a key is too easy to guess (a repeated pattern, words, one kind of character), or None."""
    period = _period(key)
    if period is not None:
        return ("it repeats one character over and over" if period == 1
                else f"it repeats a pattern of {period} characters")
    lowered = key.lower()
    worded = sum(len(m.group()) for m in _WORD.finditer(lowered)) + sum(
        len(m.group()) for m in _SEPARATORS.finditer(_WORD.sub("", lowered)))
    if worded * 2 >= len(key):
        return "it is made mostly of common words (password, secret, changeme, ...)"
    if classes(key) < 2:
        return "it uses only one kind of character (all lower case, all upper case or all digits)"
    estimate = bits(key)
    if estimate < MIN_BITS:
        return f"its characters carry about {estimate:.0f} bits of entropy; at least {MIN_BITS} are needed"
    return None
