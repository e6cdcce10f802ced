"""Validated patterns: e-mails, IBANs, payment cards, French NIR, IP addresses, URL tokens and phone numbers.

Each pattern is paired with a validator (IBAN mod 97, Luhn, NIR key, IP ranges, phone numbering plans) so that
order numbers, dates and references that merely look like identifiers pass through.
"""

import ipaddress
import re
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import phonenumbers

from matcha.runtime.pii.kinds import EMAIL, FR_NIR, IBAN, IP_ADDRESS, PAYMENT_CARD, PHONE, URL_TOKEN, Finding

_URL = re.compile(r"\bhttps?://[^\s<>\"'\])]+", re.IGNORECASE)
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_NIR = re.compile(
    r"(?<!\d)([12])[ .]?(\d{2})[ .]?(0[1-9]|1[0-2]|[2-9]\d)[ .]?(\d{2}|2[AB])[ .]?(\d{3})[ .]?(\d{3})[ .]?(\d{2})(?!\d)"
)
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

# A phone candidate: an optional + or 00, then digits with the separators people type between groups.
_PHONE = re.compile(
    r"(?<![\w+/.,#-])(?:\+|00)?(?:\( ?\+?\d{1,4} ?\)[ \u00a0.-]?)?\d(?:[ \u00a0.\-/]{0,2}\(?\d+\)?){2,9}(?![\w/-]|"
    r"[.,]\d)"
)
_DATE_LIKE = re.compile(r"^(?:\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}[:h]\d{2})$")
_IPV4_SHAPE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_NANP_SHAPE = re.compile(r"^(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}$")
_PHONE_CUE = re.compile(
    r"(?i)(?:\b(?:tel|tél|tele?phone|téléphone|phone|mobile|cell|portable|fixe|call|calls|called|ring|text|sms|"
    r"whatsapp|fax|appel\w*|rappel\w*|joindre|joignable|contact\w*|numéro|number|no\.|ligne|line|hotline|au)\b|☎|📞)"
)
_NOT_PHONE_CUE = re.compile(
    r"(?i)\b(?:order|orders|confirmation|commande|invoice|facture|ref|réf|reference|référence|sku|ean|isbn|tracking|"
    r"suivi|colis|"
    r"parcel|ticket|case|dossier|lot|siret|siren|vat|tva|batch|serial|série|article|item|code|barcode|model|modèle|"
    r"account|compte|contrat|contract|policy|police|membership|member|loyalty|fidélité|card|carte|nir|ssn|insee|"
    r"sécurité sociale|social security|n°|nº|#)\W*$"
)
# Regions tried for numbers written without a country code, by the text's language.
PHONE_REGIONS = ("FR", "BE", "CH", "GB", "US", "DE", "ES", "IT")
_REGION_ORDER = {
    "fr": ("FR", "BE", "CH", "GB", "US", "DE", "ES", "IT"),
    "en": ("US", "GB", "FR", "BE", "CH", "DE", "ES", "IT"),
}


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
    parts = urlsplit(url)
    if any(name.lower() in _SECRET_PARAMETERS and value for name, value in parse_qsl(parts.query)):
        return True
    return any(_RANDOM_SEGMENT.match(segment) for segment in parts.path.split("/"))


def _card(match: re.Match) -> bool:
    digits = re.sub(r"[ -]", "", match[0])
    return 13 <= len(digits) <= 19 and digits[0] in "3456" and luhn_valid(digits)


def _ipv4(match: re.Match) -> bool:
    return all(int(octet) <= 255 and (octet == "0" or not octet.startswith("0")) for octet in match[0].split("."))


def _ipv6(match: re.Match) -> bool:
    try:
        ipaddress.IPv6Address(match[0])
    except ValueError:
        return False
    return match[0].count(":") >= 2 and any(char.isdigit() or char in "abcdefABCDEF" for char in match[0])


# (kind, pattern, validator, score), in priority order: a URL may hold an email or an IP; an IBAN holds digit runs.
_VALIDATED: tuple[tuple[str, re.Pattern, Callable[[re.Match], bool], float], ...] = (
    (URL_TOKEN, _URL, lambda match: _url_carries_token(match[0].rstrip(".,;:!?")), 0.9),
    (EMAIL, _EMAIL, lambda match: True, 1.0),
    (IBAN, _IBAN, lambda match: iban_valid(match[0]), 1.0),
    (FR_NIR, _NIR, nir_valid, 1.0),
    (PAYMENT_CARD, _CARD, _card, 1.0),
)
_ADDRESSES: tuple[tuple[re.Pattern, Callable[[re.Match], bool]], ...] = ((_IPV4, _ipv4), (_IPV6, _ipv6))


def validated_findings(text: str, wanted: frozenset[str]) -> Iterator[tuple[int, Finding]]:
    """(priority, finding) for the checksum-backed kinds, before phones."""
    for priority, (kind, pattern, valid, score) in enumerate(_VALIDATED):
        if kind not in wanted:
            continue
        for match in pattern.finditer(text):
            if not valid(match):
                continue
            start, end = match.span()
            if kind == URL_TOKEN:
                end = start + len(match[0].rstrip(".,;:!?"))
            yield priority, Finding(kind, start, end, text[start:end], score)


def ip_findings(text: str) -> Iterator[Finding]:
    for pattern, valid in _ADDRESSES:
        for match in pattern.finditer(text):
            if valid(match):
                yield Finding(IP_ADDRESS, match.start(), match.end(), match[0], 0.95)


def phone_findings(text: str, language: str) -> Iterator[Finding]:
    """Candidates checked against the numbering plans of the regions served, by phonenumbers."""
    regions = _REGION_ORDER.get(language, PHONE_REGIONS)
    for match in _PHONE.finditer(text):
        candidate = match[0].rstrip(" .-/")
        digits = sum(char.isdigit() for char in candidate)
        # National layouts of the plans served have at most 12 digits with their trunk prefix.
        national_limit = 15 if candidate.startswith(("+", "00", "(+")) else 12
        if not 7 <= digits <= national_limit or _DATE_LIKE.match(candidate):
            continue
        start = match.start()
        before = text[max(0, start - 30) : start]
        # The word just before decides first: "order 4155552671" is an order number whatever else is near.
        if _NOT_PHONE_CUE.search(before) or _IPV4_SHAPE.match(candidate):
            continue
        cue = bool(_PHONE_CUE.search(before))
        score = _phone_score(candidate, regions, cue)
        if score:
            yield Finding(PHONE, start, start + len(candidate), candidate, score)


def _phone_score(candidate: str, regions: tuple[str, ...], cue: bool) -> float:
    international = candidate.startswith(("+", "00", "(+", "(00"))
    written = "+" + candidate[2:] if candidate.startswith("00") else candidate
    for region in (None,) if international else regions:
        try:
            number = phonenumbers.parse(written, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return 0.95
        if international and phonenumbers.is_possible_number(number) and (cue or _grouped(candidate)):
            return 0.7
    # North American layout with a reserved or fictional exchange (555 numbers) is still a phone as written.
    if _NANP_SHAPE.match(candidate) and (cue or not candidate.isdigit()):
        return 0.7
    return 0.0


def _grouped(candidate: str) -> bool:
    return any(not char.isdigit() for char in candidate.lstrip("+"))
