"""A labelled corpus of marketing texts for the personal-data detector.

Texts are built from templates a marketing team writes every day (order confirmations,
support replies, CRM notes, campaign briefs), filled with identifiers that are valid
(checksums computed) and with near misses that are not personal data: order and invoice
numbers, dates, prices, SKUs, tracking numbers, numbers failing their checksum, URLs
without secrets. Deterministic: the same corpus on every run.
"""

import random
from dataclasses import dataclass

from matcha.conductor.redaction import luhn_valid


@dataclass(frozen=True)
class Example:
    text: str
    # (kind, exact value) of every piece of personal data in the text.
    labels: tuple[tuple[str, str], ...]


FIRST = ["camille", "lucas", "emma", "hugo", "chloe", "louis", "ines", "jules", "lea", "adam", "sarah", "noah"]
LAST = ["martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy", "moreau"]
DOMAINS = ["example.fr", "mail.example.com", "shop-example.co.uk", "example.org", "client.example.io"]
CITIES = ["Paris", "Lyon", "Nantes", "Lille", "Bordeaux", "Rennes"]
PRODUCTS = ["linen dress", "running shoes", "leather bag", "wool scarf", "denim jacket", "silk blouse"]


def _iban(rng: random.Random, country: str, length: int) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(length - 4))
    numeric = "".join(str(int(char, 36)) for char in body + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{body}"
    return compact


def _group(value: str, size: int = 4, separator: str = " ") -> str:
    return separator.join(value[index : index + size] for index in range(0, len(value), size))


def _card(rng: random.Random, prefix: str, length: int) -> str:
    while True:
        digits = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
        if luhn_valid(digits):
            return digits


def _not_luhn(rng: random.Random) -> str:
    while True:
        digits = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        if not luhn_valid(digits):
            return digits


def _nir(rng: random.Random) -> str:
    number = (
        f"{rng.choice('12')}{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 95):02d}"
        f"{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
    )
    key = 97 - int(number) % 97
    return f"{number}{key:02d}"


def _phone(rng: random.Random) -> str:
    pairs = [f"{rng.randint(0, 99):02d}" for _ in range(4)]
    style = rng.randrange(6)
    lead = rng.choice(["6", "7", "1", "4"])
    if style == 0:
        return f"0{lead} " + " ".join(pairs)
    if style == 1:
        return f"0{lead}." + ".".join(pairs)
    if style == 2:
        return f"0{lead}" + "".join(pairs)
    if style == 3:
        return f"+33 {lead} " + " ".join(pairs)
    if style == 4:
        return f"+33{lead}" + "".join(pairs)
    return rng.choice(["+44 20 7946 0958", "+1 415 555 0132", "+49 30 901820", "+32 2 555 12 34"])


def _email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice([f"{first}.{last}", f"{first[0]}.{last}", f"{first}{rng.randint(1, 99)}", f"{first}+promo"])
    return f"{local}@{rng.choice(DOMAINS)}"


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(["2001:db8:85a3::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "2a01:cb00:1234::42"])
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _token_url(rng: random.Random) -> str:
    token = "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(28))
    return rng.choice(
        [
            f"https://shop.example.com/account/reset?token={token}",
            f"https://app.example.io/unsubscribe/{token}",
            f"https://example.fr/login?session={token[:20]}&lang=fr",
            f"http://links.example.com/c?uid=42&sig={token[:16]}",
            f"https://api.example.com/v1/export?api_key={token}",
        ]
    )


def _iban_value(rng: random.Random) -> str:
    country, length = rng.choice([("FR", 27), ("DE", 22), ("ES", 24), ("BE", 16), ("IT", 27)])
    if country == "IT":
        country, length = "NL", 18
    compact = _iban(rng, country, length)
    return _group(compact) if rng.random() < 0.7 else compact


def _card_value(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    digits = _card(rng, prefix, length)
    style = rng.randrange(3)
    if style == 0:
        return _group(digits)
    if style == 1:
        return _group(digits, separator="-")
    return digits


def _nir_value(rng: random.Random) -> str:
    nir = _nir(rng)
    if rng.random() < 0.5:
        return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    return nir


GENERATORS = {
    "EMAIL": _email,
    "PHONE": _phone,
    "IBAN": _iban_value,
    "PAYMENT_CARD": _card_value,
    "FR_NIR": _nir_value,
    "IP_ADDRESS": _ip,
    "URL_TOKEN": _token_url,
}

TEMPLATES = {
    "EMAIL": [
        "Hello {name}, your voucher is on its way to {value}.",
        "Newsletter bounce for {value}, please check the address.",
        "Pour toute question, écrivez-nous à {value} avant le {date}.",
    ],
    "PHONE": [
        "Customer {name} asked to be called back on {value} about order {order}.",
        "Rappeler Mme {name} au {value} avant {time}.",
        "VIP line for the {product} launch: {value}.",
    ],
    "IBAN": [
        "Refund of {price} for order {order} to be paid to {value}.",
        "Le client {name} a transmis son RIB : {value}.",
    ],
    "PAYMENT_CARD": [
        "The customer read out the card {value} on the phone, please never store it.",
        "Paiement refusé pour la carte {value} le {date}.",
    ],
    "FR_NIR": [
        "Dossier mutuelle de {name} : numéro de sécurité sociale {value}.",
        "HR note: the new ambassador's NIR is {value}.",
    ],
    "IP_ADDRESS": [
        "Suspicious login for {name} from {value} at {time}.",
        "Consent banner accepted from IP {value} on {date}.",
    ],
    "URL_TOKEN": [
        "Send {name} this link to reset the password: {value}",
        "Broken unsubscribe link reported: {value}.",
    ],
}

NEAR_MISSES = [
    "Order {order} shipped on {date}; tracking number 1Z999AA10123456784.",
    "Invoice 2024/03/0042 of {price} is due on {date} at {time}.",
    "SKU 4006381333931 ({product}) is back in stock in {city}.",
    "Campaign brief v2.1: budget {price}, launch {date}, landing https://shop.example.com/{product_slug}"
    "?utm_source=newsletter&utm_campaign=spring.",
    "Card ending in 4242 was charged {price} for order {order}.",
    "The reference {bad_card} does not match any order.",
    "Wrong account number {bad_iban} in the import file, the row was skipped.",
    "Store opening hours in {city}: 09:30 to 19:00, 75011 Paris.",
    "Our SIRET is 732 829 320 00074 and our VAT number FR40303265045.",
    "Loyalty members: 12 450 in {city}, up 3.5% since {date}.",
    "Call-to-action tested on 2 variants, 18.2.3 release notes at https://docs.example.com/releases/18-2.",
    "Order {order} contains 3 x {product} at {price} each.",
    "App release 4.2.0.1 fixes the {product} page; call centre hours 8:00-20:00.",
    "Gift cards 6011 0000 0000 0000 are not valid, only the codes printed on the back.",
]


def _context(rng: random.Random) -> dict[str, str]:
    product = rng.choice(PRODUCTS)
    bad_iban = _iban(rng, "FR", 27)
    bad_iban = bad_iban[:2] + f"{(int(bad_iban[2:4]) + 1) % 100:02d}" + bad_iban[4:]
    return {
        "name": f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}",
        "order": rng.choice([f"CMD-2024-{rng.randint(1, 999999):06d}", f"#{rng.randint(100000000, 999999999)}"]),
        "date": rng.choice(
            [f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2024", f"2024-{rng.randint(1, 12):02d}-15"]
        ),
        "time": f"{rng.randint(8, 19)}:{rng.choice(['00', '15', '30', '45'])}",
        "price": rng.choice([f"{rng.randint(10, 999)},{rng.randint(0, 99):02d} €", f"${rng.randint(10, 999)}.99"]),
        "product": product,
        "product_slug": product.replace(" ", "-"),
        "city": rng.choice(CITIES),
        "bad_card": _group(_not_luhn(rng)),
        "bad_iban": _group(bad_iban),
    }


def build_corpus(seed: int = 20241128, size: int = 240) -> list[Example]:
    rng = random.Random(seed)
    kinds = sorted(GENERATORS)
    examples: list[Example] = []
    for index in range(size):
        context = _context(rng)
        if index % 4 == 3:
            examples.append(Example(rng.choice(NEAR_MISSES).format(**context), ()))
            continue
        kind = kinds[index % len(kinds)]
        value = GENERATORS[kind](rng)
        text = rng.choice(TEMPLATES[kind]).format(value=value, **context)
        labels = [(kind, value)]
        if index % 5 == 0:
            # A second identifier in the same text, and a near miss beside it.
            other = kinds[(index // 5) % len(kinds)]
            other_value = GENERATORS[other](rng)
            text += f" Also on file: {other_value}. " + rng.choice(NEAR_MISSES).format(**context)
            labels.append((other, other_value))
        examples.append(Example(text, tuple(labels)))
    return examples
