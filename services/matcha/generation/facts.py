"""Structured facts of a draft: checked, rendered into the prompt, and kept as grounding sources."""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from matcha.runtime.errors import Violations

MAX_FACTS_CHARS = 2000
MAX_RECOMMENDED_ITEMS = 10
CURRENCY = re.compile(r"^[A-Z]{3}$")
AMOUNT = re.compile(r"^\d{1,9}(?:\.\d{1,2})?$")
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
MONTH_NAMES = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
}
LABELS = {
    "en": {
        "intro": "Facts you may use. State no other price, date, figure or product name:",
        "product": "Product",
        "offer": "Offer",
        "price": "Price",
        "dates": "Dates",
        "from_to": "from {start} to {end}",
        "from": "from {start}",
        "until": "until {end}",
        "audience": "Audience",
        "recommended": "Recommended for this audience",
        "previous_winner": "The message that won the last campaign for this audience, to improve on, not to copy",
    },
    "fr": {
        "intro": "Faits à utiliser. N'écris aucun autre prix, date, chiffre ou nom de produit :",
        "product": "Produit",
        "offer": "Offre",
        "price": "Prix",
        "dates": "Dates",
        "from_to": "du {start} au {end}",
        "from": "à partir du {start}",
        "until": "jusqu'au {end}",
        "audience": "Public",
        "recommended": "Recommandé pour ce public",
        "previous_winner": "Le message gagnant de la dernière campagne pour ce public, à améliorer, pas à recopier",
    },
}


@dataclass(frozen=True)
class PriceInput:
    amount: str
    currency: str


@dataclass(frozen=True)
class RecommendedItemInput:
    name: str
    price: PriceInput | None = None
    description: str = ""


@dataclass(frozen=True)
class FactsInput:
    product: str = ""
    offer: str = ""
    price: PriceInput | None = None
    start_date: str = ""
    end_date: str = ""
    segment_description: str = ""
    recommended_items: tuple[RecommendedItemInput, ...] = ()
    previous_winner: str = ""


def check_facts(violations: Violations, facts: FactsInput, path: str = "facts") -> None:
    """Every field that does not parse, by its path; nothing is guessed."""
    if facts.price is not None:
        _check_price(violations, facts.price, f"{path}.price")
    dates = {}
    for name in ("start_date", "end_date"):
        value = getattr(facts, name)
        if value:
            try:
                dates[name] = date.fromisoformat(value)
            except ValueError:
                violations.add(f"{path}.{name}", f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)")
            else:
                if len(value) != 10:
                    violations.add(f"{path}.{name}", f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)")
    if len(dates) == 2 and dates["end_date"] < dates["start_date"]:
        violations.add(f"{path}.end_date", "must not be before start_date")
    violations.check(
        len(facts.recommended_items) <= MAX_RECOMMENDED_ITEMS,
        f"{path}.recommended_items",
        f"at most {MAX_RECOMMENDED_ITEMS} items",
    )
    for index, item in enumerate(facts.recommended_items):
        violations.check(bool(item.name.strip()), f"{path}.recommended_items[{index}].name", "must not be empty")
        if item.price is not None:
            _check_price(violations, item.price, f"{path}.recommended_items[{index}].price")
    size = sum(len(text) for text in _texts(facts))
    violations.check(size <= MAX_FACTS_CHARS, path, f"at most {MAX_FACTS_CHARS} characters in all (got {size})")


def _check_price(violations: Violations, price: PriceInput, path: str) -> None:
    if not AMOUNT.match(price.amount):
        violations.add(f"{path}.amount", f"{price.amount!r} is not a decimal amount such as 12.90")
    else:
        try:
            Decimal(price.amount)
        except InvalidOperation:
            violations.add(f"{path}.amount", f"{price.amount!r} is not a decimal amount such as 12.90")
    violations.check(bool(CURRENCY.match(price.currency)), f"{path}.currency", "an ISO 4217 code such as EUR")


def format_price(price: PriceInput, language: str) -> str:
    amount = Decimal(price.amount)
    digits = f"{amount:.2f}" if amount != amount.to_integral() else f"{amount:.0f}"
    symbol = SYMBOLS.get(price.currency)
    if language == "fr":
        digits = digits.replace(".", ",")
        return f"{digits} {symbol or price.currency}"
    return f"{symbol}{digits}" if symbol else f"{price.currency} {digits}"


def format_date(value: str, language: str) -> str:
    day = date.fromisoformat(value)
    month = MONTH_NAMES.get(language, MONTH_NAMES["en"])[day.month - 1]
    if language == "fr":
        return f"{'1er' if day.day == 1 else day.day} {month} {day.year}"
    return f"{month} {day.day}, {day.year}"


def render_facts(facts: FactsInput, language: str) -> str:
    """The facts as prompt lines, in the draft's language (prices and dates written as the draft should)."""
    labels = LABELS.get(language, LABELS["en"])
    lines = [labels["intro"]]
    if facts.product:
        lines.append(f"- {labels['product']}: {facts.product}")
    if facts.offer:
        lines.append(f"- {labels['offer']}: {facts.offer}")
    if facts.price is not None:
        lines.append(f"- {labels['price']}: {format_price(facts.price, language)}")
    start = format_date(facts.start_date, language) if facts.start_date else ""
    end = format_date(facts.end_date, language) if facts.end_date else ""
    if start or end:
        key = "from_to" if start and end else "from" if start else "until"
        lines.append(f"- {labels['dates']}: " + labels[key].format(start=start, end=end))
    if facts.segment_description:
        lines.append(f"- {labels['audience']}: {facts.segment_description}")
    if facts.recommended_items:
        lines.append(f"- {labels['recommended']}:")
        for item in facts.recommended_items:
            line = f"  - {item.name}"
            if item.price is not None:
                line += f" ({format_price(item.price, language)})"
            if item.description:
                line += f": {item.description}"
            lines.append(line)
    if facts.previous_winner:
        lines.append(f"- {labels['previous_winner']}:")
        lines += [f"  > {line}" for line in facts.previous_winner.strip().splitlines() if line.strip()]
    return "\n".join(lines) if len(lines) > 1 else ""


def grounding_texts(facts: FactsInput) -> list[str]:
    """What the facts allow a draft to say, in every written form the draft may use."""
    texts = _texts(facts)
    prices = [facts.price] if facts.price else []
    prices += [item.price for item in facts.recommended_items if item.price is not None]
    for language in MONTH_NAMES:
        texts += [format_price(price, language) for price in prices]
        texts += [format_date(value, language) for value in (facts.start_date, facts.end_date) if value]
    return texts


def _texts(facts: FactsInput) -> list[str]:
    texts = [facts.product, facts.offer, facts.start_date, facts.end_date, facts.segment_description]
    # What the winning message said was approved: saying it again is grounded.
    texts.append(facts.previous_winner)
    if facts.price is not None:
        texts.append(facts.price.amount)
    for item in facts.recommended_items:
        texts += [item.name, item.description] + ([item.price.amount] if item.price else [])
    return [text for text in texts if text]
