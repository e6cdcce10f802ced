"""Personal-data detection and reversible pseudonymisation.

Each detector pairs a pattern with a validator (IBAN mod 97, Luhn, NIR key, IP ranges)
so that order numbers, dates and references that merely look like identifiers pass
through. Placeholders are derived from a per-run key, so the same value gets the same
placeholder within a run (also after a resume) and nothing about it elsewhere.
"""

import hashlib
import hmac
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

EMAIL = "EMAIL"
PHONE = "PHONE"
IBAN = "IBAN"
PAYMENT_CARD = "PAYMENT_CARD"
FR_NIR = "FR_NIR"
IP_ADDRESS = "IP_ADDRESS"
URL_TOKEN = "URL_TOKEN"
ALL_KINDS = frozenset({EMAIL, PHONE, IBAN, PAYMENT_CARD, FR_NIR, IP_ADDRESS, URL_TOKEN})

PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|IBAN|PAYMENT_CARD|FR_NIR|IP_ADDRESS|URL_TOKEN)_[0-9a-f]{10}\]")

_URL = re.compile(r"\bhttps?://[^\s<>\"'\])]+", re.IGNORECASE)
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_NIR = re.compile(
    r"(?<!\d)([12])[ .]?(\d{2})[ .]?(0[1-9]|1[0-2]|[2-9]\d)[ .]?(\d{2}|2[AB])[ .]?(\d{3})[ .]?(\d{3})[ .]?(\d{2})(?!\d)"
)
_PHONE_FR = re.compile(r"(?<![\d+])0[1-9](?:([ .-]?)\d{2})(?:\1\d{2}){3}(?!\d)")
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?!\d)")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_SECRET_PARAMETERS = frozenset(
    [
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth",
        "key",
        "api_key",
        "apikey",
        "session",
        "sessionid",
        "session_id",
        "sid",
        "signature",
        "sig",
        "secret",
        "password",
        "pwd",
        "code",
        "reset_token",
        "jwt",
        "otp",
    ]
)
_RANDOM_SEGMENT = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_-]{24,}$")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    value: str


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def nir_valid(match: re.Match) -> bool:
    sex, year, month, department, commune, order, key = match.groups()
    department_number = {"2A": "19", "2B": "18"}.get(department, department)
    number = int(sex + year + month + department_number + commune + order)
    return 97 - number % 97 == int(key)


def _url_carries_token(url: str) -> bool:
    parts = urlsplit(url.rstrip(".,;:!?"))
    if any(name.lower() in _SECRET_PARAMETERS and value for name, value in parse_qsl(parts.query)):
        return True
    return any(_RANDOM_SEGMENT.match(segment) for segment in parts.path.split("/"))


def _card(match: re.Match) -> bool:
    digits = re.sub(r"[ -]", "", match[0])
    return 13 <= len(digits) <= 19 and digits[0] in "3456" and luhn_valid(digits)


def _phone_international(match: re.Match) -> bool:
    return 8 <= sum(char.isdigit() for char in match[0]) <= 15


def _ipv4(match: re.Match) -> bool:
    return all(int(octet) <= 255 and (octet == "0" or not octet.startswith("0")) for octet in match[0].split("."))


def _ipv6(match: re.Match) -> bool:
    try:
        ipaddress.IPv6Address(match[0])
    except ValueError:
        return False
    return match[0].count(":") >= 2 and any(char.isdigit() or char in "abcdefABCDEF" for char in match[0])


# In priority order: a URL may hold an email or an IP; an IBAN holds digit runs.
_DETECTORS: tuple[tuple[str, re.Pattern, Callable[[re.Match], bool]], ...] = (
    (URL_TOKEN, _URL, lambda match: _url_carries_token(match[0])),
    (EMAIL, _EMAIL, lambda match: True),
    (IBAN, _IBAN, lambda match: iban_valid(match[0])),
    (FR_NIR, _NIR, nir_valid),
    (PAYMENT_CARD, _CARD, _card),
    (PHONE, _PHONE_INTL, _phone_international),
    (PHONE, _PHONE_FR, lambda match: True),
    (IP_ADDRESS, _IPV4, _ipv4),
    (IP_ADDRESS, _IPV6, _ipv6),
)


def detect(text: str, kinds: Iterable[str] = ALL_KINDS) -> list[Finding]:
    """Non-overlapping findings, by position; earlier detectors win overlaps."""
    wanted = frozenset(kinds)
    taken: list[Finding] = []
    for kind, pattern, valid in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            value = match[0]
            if kind == URL_TOKEN:
                value = value.rstrip(".,;:!?")
                end = start + len(value)
            if any(start < other.end and other.start < end for other in taken) or not valid(match):
                continue
            taken.append(Finding(kind, start, end, value))
    return sorted((finding for finding in taken if finding.kind in wanted), key=lambda finding: finding.start)


@dataclass
class Redaction:
    """The outcome of pseudonymising one request."""

    value: Any
    counts: Counter
    # placeholder -> original value; kept only in the run state.
    mapping: dict[str, str]


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def placeholder(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}_{digest[:10]}]"

    def redact_text(self, text: str, kinds: Iterable[str], redaction: Redaction) -> str:
        pieces, position = [], 0
        for finding in detect(text, kinds):
            placeholder = self.placeholder(finding.kind, finding.value)
            redaction.mapping[placeholder] = finding.value
            redaction.counts[finding.kind] += 1
            pieces.extend((text[position : finding.start], placeholder))
            position = finding.end
        pieces.append(text[position:])
        return "".join(pieces)

    def redact(self, value: Any, kinds: Iterable[str], fields: tuple[str, ...] = ()) -> Redaction:
        """Pseudonymises every string of `value`, or only those under the dotted `fields`."""
        redaction = Redaction(value=None, counts=Counter(), mapping={})
        kinds = frozenset(kinds)
        paths = [tuple(path.split(".")) for path in fields] or [()]
        redaction.value = _transform(value, paths, lambda text: self.redact_text(text, kinds, redaction))
        return redaction


def rehydrate(value: Any, mapping: dict[str, str]) -> Any:
    """Puts the original values back wherever a placeholder of `mapping` appears."""
    if not mapping:
        return value
    return _transform(value, [()], lambda text: PLACEHOLDER.sub(lambda match: mapping.get(match[0], match[0]), text))


def _transform(value: Any, paths: list[tuple[str, ...]], change: Callable[[str], str]) -> Any:
    """Applies `change` to strings; a path selects which keys to descend (lists are crossed)."""
    if isinstance(value, str):
        return change(value) if any(not path for path in paths) else value
    if isinstance(value, list):
        return [_transform(item, paths, change) for item in value]
    if isinstance(value, dict):
        if any(not path for path in paths):
            return {key: _transform(item, [()], change) for key, item in value.items()}
        return {
            key: _transform(item, [path[1:] for path in paths if path[0] == key], change)
            if any(path[0] == key for path in paths)
            else item
            for key, item in value.items()
        }
    return value
