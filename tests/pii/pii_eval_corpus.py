"""A labelled evaluation set for personal-data detection: marketing and customer-service texts, English and French.

Seeded and deterministic. Written apart from the engine on purpose (its own name, street and city lists, its own
checksum code), so that the figures measure the engine rather than echo it. Texts are CRM notes, support
tickets, order confirmations, reviews, social posts, shipping labels and campaign briefs; the people come from
several cultures, the addresses from nine countries, the phones from eight numbering plans in national and
international layouts. Near misses sit beside the real data: products and brands named like people, street
names inside product names, cities without an address, order, invoice and tracking numbers, dates that are not
birthdays, ages of things.
"""

import random
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    text: str
    language: str
    spans: tuple[Span, ...]


FIRST_NAMES = [
    "Olivia",
    "Amelia",
    "Jack",
    "Harry",
    "Emily",
    "George",
    "Sophie",
    "Thomas",
    "Grace",
    "Oscar",
    "Manon",
    "Camille",
    "Louise",
    "Baptiste",
    "Théo",
    "Clémence",
    "Mathilde",
    "Gaëlle",
    "Yann",
    "Corentin",
    "Fatima",
    "Youssef",
    "Karim",
    "Leïla",
    "Samir",
    "Nadia",
    "Mehdi",
    "Amina",
    "Rachid",
    "Yasmine",
    "Aïcha",
    "Moussa",
    "Ousmane",
    "Aminata",
    "Kofi",
    "Ngozi",
    "Chidi",
    "Mamadou",
    "Fatou",
    "Abdoulaye",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Minh",
    "Linh",
    "Ji-woo",
    "Seo-yeon",
    "Haruto",
    "Xiaoling",
    "Priya",
    "Arjun",
    "Ananya",
    "Rohan",
    "Deepika",
    "Vikram",
    "Lucía",
    "Mateo",
    "Valentina",
    "Santiago",
    "Giulia",
    "Lorenzo",
    "Francesca",
    "Matteo",
    "Katarzyna",
    "Piotr",
    "Agnieszka",
    "Dmitri",
    "Olga",
    "Ivan",
    "Sean",
    "Siobhan",
    "Niamh",
    "Lars",
    "Ingrid",
    "Sven",
    "Anouk",
    "Daan",
    "Jonas",
    "Lena",
]
LAST_NAMES = [
    "Thompson",
    "Whitfield",
    "Harrington",
    "Clarke",
    "Fletcher",
    "Brennan",
    "Caldwell",
    "Ashworth",
    "Pemberton",
    "Lefebvre",
    "Girard",
    "Fontaine",
    "Rousseau",
    "Mercier",
    "Chevalier",
    "Lambert",
    "Gauthier",
    "Perrin",
    "Roux",
    "Benali",
    "El Amrani",
    "Haddad",
    "Bouzid",
    "Cherif",
    "Mansouri",
    "Ait Ouali",
    "Belkacem",
    "Ziani",
    "Diallo",
    "Traoré",
    "Ndiaye",
    "Mensah",
    "Okafor",
    "Adeyemi",
    "Koné",
    "Sow",
    "Diop",
    "Asante",
    "Nguyen",
    "Tran",
    "Zhang",
    "Wang",
    "Tanaka",
    "Suzuki",
    "Kim",
    "Park",
    "Chen",
    "Watanabe",
    "Patel",
    "Sharma",
    "Iyer",
    "Reddy",
    "Gupta",
    "García",
    "Fernández",
    "Rodríguez",
    "López",
    "Moreno",
    "Rossi",
    "Bianchi",
    "Esposito",
    "Romano",
    "Kowalski",
    "Nowak",
    "Wiśniewska",
    "Ivanova",
    "Petrov",
    "Sokolov",
    "O'Connor",
    "McCarthy",
    "Van der Berg",
    "De Smet",
    "Janssens",
    "Müller",
    "Schneider",
    "Hoffmann",
    "Lindqvist",
]
TITLES_EN = ["Mr", "Mrs", "Ms", "Dr", "Mr.", "Mrs.", "Miss"]
TITLES_FR = ["M.", "Mme", "Mlle", "Monsieur", "Madame", "Dr"]

# (street words, house-number-first, locality) per country; localities carry their real postcodes.
FR_STREETS = [
    "rue de la République",
    "avenue Jean Jaurès",
    "boulevard Voltaire",
    "rue des Lilas",
    "place du Marché",
    "allée des Tilleuls",
    "impasse des Acacias",
    "chemin de la Fontaine",
    "quai des Chartrons",
    "rue du Général Leclerc",
    "avenue de Verdun",
    "rue Sainte-Catherine",
    "boulevard de la Liberté",
    "rue Pasteur",
    "cours Mirabeau",
    "route de Lyon",
]
FR_LOCALITIES = [
    "75011 Paris",
    "69003 Lyon",
    "13006 Marseille",
    "31000 Toulouse",
    "44000 Nantes",
    "33000 Bordeaux",
    "59800 Lille",
    "67000 Strasbourg",
    "35000 Rennes",
    "06000 Nice",
    "34000 Montpellier",
    "21000 Dijon",
    "74000 Annecy",
    "29200 Brest",
    "92100 Boulogne-Billancourt",
    "63000 Clermont-Ferrand",
]
UK_STREETS = [
    "Kingsley Road",
    "Elm Grove",
    "Church Lane",
    "Victoria Street",
    "Albert Road",
    "Station Road",
    "Mill Lane",
    "Queen's Drive",
    "Park Avenue",
    "Meadow Close",
    "Highfield Crescent",
    "Manor Way",
]
UK_LOCALITIES = [
    "Manchester M14 5XY",
    "Bristol BS8 1QU",
    "Leeds LS6 2AB",
    "London SE1 7PB",
    "Glasgow G12 8QQ",
    "Cardiff CF10 3AT",
    "Brighton BN1 4GH",
    "Oxford OX2 6HT",
    "Edinburgh EH3 9DR",
]
US_STREETS = [
    "Maple Street",
    "Oak Avenue",
    "Sunset Blvd",
    "Lakeview Drive",
    "Pine St",
    "Cedar Lane",
    "Washington Ave",
    "Hillcrest Road",
    "Elm Street",
    "Peachtree Rd",
    "Mission St",
    "Ocean Drive",
]
US_LOCALITIES = [
    "Austin, TX 78701",
    "Portland, OR 97205",
    "Chicago, IL 60614",
    "Boston, MA 02116",
    "Denver, CO 80203",
    "Atlanta, GA 30309",
    "San Francisco, CA 94103",
    "Seattle, WA 98101",
    "Miami, FL 33139",
    "Brooklyn, NY 11215",
]
BE_STREETS = ["Rue Neuve", "Avenue Louise", "Chaussée de Waterloo", "Rue de Namur", "Boulevard Anspach", "Rue Haute"]
BE_LOCALITIES = ["1000 Bruxelles", "1050 Ixelles", "4000 Liège", "5000 Namur", "1180 Uccle", "6000 Charleroi"]
CH_STREETS = [
    "Rue du Marché",
    "Avenue de la Gare",
    "Rue de Lausanne",
    "Bahnhofstrasse",
    "Seestrasse",
    "Chemin des Vignes",
]
CH_LOCALITIES = ["1204 Genève", "1003 Lausanne", "8001 Zürich", "2000 Neuchâtel", "3011 Bern", "1950 Sion"]
DE_STREETS = ["Hauptstraße", "Lindenweg", "Schillerstraße", "Goethestraße", "Marktplatz", "Bergstraße", "Gartenweg"]
DE_LOCALITIES = ["10115 Berlin", "80331 München", "50667 Köln", "20095 Hamburg", "60311 Frankfurt am Main"]
ES_STREETS = ["Calle Mayor", "Avenida Diagonal", "Calle de Serrano", "Paseo de Gracia", "Calle Real", "Plaza Nueva"]
ES_LOCALITIES = ["28013 Madrid", "08008 Barcelona", "41004 Sevilla", "46002 Valencia", "29015 Málaga"]
IT_STREETS = ["Via Roma", "Corso Buenos Aires", "Via Garibaldi", "Piazza Duomo", "Via Dante", "Viale Mazzini"]
IT_LOCALITIES = ["00184 Roma", "20124 Milano", "10121 Torino", "50123 Firenze", "80134 Napoli"]

# Named in reviews and briefs without any address.
CITIES = [
    "Paris",
    "Lyon",
    "London",
    "Manchester",
    "New York",
    "Chicago",
    "Bruxelles",
    "Genève",
    "Berlin",
    "Madrid",
    "Milan",
    "Lisbon",
    "Montréal",
    "Bordeaux",
    "Toulouse",
    "Seattle",
    "Dublin",
    "Marseille",
]
# Products and collections named like people or streets; brands.
PRODUCTS_EN = [
    "linen shirt",
    "running jacket",
    "leather tote",
    "cashmere scarf",
    "denim skirt",
    "canvas sneakers",
    "ceramic mug",
    "scented candle",
    "wool blanket",
    "silk pyjamas",
]
PRODUCTS_FR = [
    "chemise en lin",
    "veste de running",
    "sac cabas en cuir",
    "écharpe en cachemire",
    "jupe en jean",
    "baskets en toile",
    "mug en céramique",
    "bougie parfumée",
    "plaid en laine",
    "pyjama en soie",
]
NAMED_PRODUCTS = [
    "Harrison armchair",
    "Lola sandals",
    "Morgan sofa",
    "Juliette dress",
    "Oscar lamp",
    "Victoria blazer",
    "Hudson boots",
    "Margaux bag",
    "Franklin watch",
    "Bianca coat",
]
NAMED_PRODUCTS_FR = [
    "fauteuil Harrison",
    "sandales Lola",
    "canapé Morgan",
    "robe Juliette",
    "lampe Oscar",
    "blazer Victoria",
    "bottines Hudson",
    "sac Margaux",
    "montre Franklin",
    "manteau Bianca",
]
STREET_PRODUCTS = [
    "Oxford Street tote",
    "Rivoli print scarf",
    "Fifth Avenue perfume",
    "Abbey Road vinyl sleeve",
    "Champs-Élysées candle",
    "Montmartre mug",
    "Portobello Road jacket",
    "Via Veneto sunglasses",
]
BRANDS = [
    "Kiehl's",
    "Ralph Lauren",
    "Louis Vuitton",
    "Tommy Hilfiger",
    "Calvin Klein",
    "Yves Saint Laurent",
    "Ted Baker",
    "Hugo Boss",
    "Jean Paul Gaultier",
    "Isabel Marant",
    "Marc Jacobs",
    "Stella McCartney",
]
MAIL_DOMAINS = ["gmail.com", "outlook.fr", "yahoo.co.uk", "orange.fr", "free.fr", "proton.me", "icloud.com", "web.de"]
MONTHS_EN = [
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
]
MONTHS_FR = [
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
]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _pairs(digits: str, separator: str) -> str:
    return separator.join(digits[index : index + 2] for index in range(0, len(digits), 2))


def phone(rng: random.Random) -> str:
    """A number of one of the eight plans, in a layout people type."""
    country = rng.choice(["FR", "FR", "BE", "CH", "UK", "US", "US", "DE", "ES", "IT"])
    if country == "FR":
        rest = rng.choice("67") + _digits(rng, 8) if rng.random() < 0.6 else rng.choice("12345") + _digits(rng, 8)
        return rng.choice(
            [
                "0" + rest[0] + " " + _pairs(rest[1:], " "),
                "0" + rest[0] + "." + _pairs(rest[1:], "."),
                "0" + rest[0] + "-" + _pairs(rest[1:], "-"),
                "0" + rest,
                "+33 " + rest[0] + " " + _pairs(rest[1:], " "),
                "+33 (0)" + rest[0] + " " + _pairs(rest[1:], " "),
                "+33" + rest,
                "0033 " + rest[0] + " " + _pairs(rest[1:], " "),
            ]
        )
    if country == "BE":
        if rng.random() < 0.5:
            rest = "4" + rng.choice("789") + _digits(rng, 7)
            return rng.choice(
                [
                    "0" + rest[:3] + " " + _pairs(rest[3:], " ").replace(" ", "", 0),
                    "+32 " + rest[:3] + " " + rest[3:5] + " " + rest[5:7] + " " + rest[7:],
                ]
            )
        rest = "2" + _digits(rng, 7)
        return rng.choice(["02 " + rest[1:4] + " " + rest[4:6] + " " + rest[6:], "+32 2 " + rest[1:4] + " " + rest[4:]])
    if country == "CH":
        rest = rng.choice(["76", "78", "79", "22", "21", "44", "31"]) + _digits(rng, 7)
        return rng.choice(
            [
                "0" + rest[:2] + " " + rest[2:5] + " " + rest[5:7] + " " + rest[7:],
                "+41 " + rest[:2] + " " + rest[2:5] + " " + rest[5:7] + " " + rest[7:],
            ]
        )
    if country == "UK":
        if rng.random() < 0.5:
            rest = "7" + rng.choice("4579") + _digits(rng, 8)
            return rng.choice(
                [
                    "0" + rest[:4] + " " + rest[4:],
                    "+44 " + rest[:4] + " " + rest[4:],
                    "+44 (0)" + rest[:4] + " " + rest[4:],
                ]
            )
        area = rng.choice(["20 7", "20 8", "161 4", "113 2", "117 9", "131 2"])
        local = _digits(rng, 7 if area.startswith("20") else 6)
        if area.startswith("20"):
            return rng.choice(["0" + area + local[:2] + " " + local[2:6], "+44 " + area + local[:2] + " " + local[2:6]])
        return rng.choice(["0" + area + local[:2] + " " + local[2:], "+44 " + area + local[:2] + " " + local[2:]])
    if country == "US":
        area = rng.choice(["212", "415", "312", "617", "206", "303", "512", "404", "718", "305"])
        exchange = rng.choice("23456789") + _digits(rng, 2)
        if rng.random() < 0.3:
            exchange = "555"
        line = _digits(rng, 4)
        return rng.choice(
            [
                f"({area}) {exchange}-{line}",
                f"{area}-{exchange}-{line}",
                f"{area}.{exchange}.{line}",
                f"+1 {area} {exchange} {line}",
                f"+1-{area}-{exchange}-{line}",
                f"1 ({area}) {exchange}-{line}",
            ]
        )
    if country == "DE":
        if rng.random() < 0.5:
            prefix = rng.choice(["151", "160", "170", "176"])
            number = _digits(rng, 8 if prefix != "160" else 7)
            return rng.choice([f"0{prefix} {number}", f"+49 {prefix} {number}", f"0{prefix}/{number}"])
        area, number = rng.choice([("30", _digits(rng, 8)), ("89", _digits(rng, 7)), ("40", _digits(rng, 8))])
        return rng.choice([f"0{area} {number}", f"+49 {area} {number}", f"+49 (0){area} {number}", f"0{area}/{number}"])
    if country == "ES":
        rest = rng.choice(["6", "7", "91", "93"]) + ""
        rest = rest + _digits(rng, 9 - len(rest))
        return rng.choice(
            [
                rest[:3] + " " + rest[3:6] + " " + rest[6:],
                "+34 " + rest[:3] + " " + rest[3:6] + " " + rest[6:],
                rest[:3] + " " + rest[3:5] + " " + rest[5:7] + " " + rest[7:],
            ]
        )
    rest = rng.choice(["33", "34", "32"]) + _digits(rng, 8) if rng.random() < 0.6 else "06" + _digits(rng, 8)
    return rng.choice(
        [
            rest[:3] + " " + rest[3:6] + " " + rest[6:],
            "+39 " + rest[:3] + " " + rest[3:6] + " " + rest[6:],
            "+39 " + rest,
        ]
    )


def address(rng: random.Random, language: str) -> str:
    countries = (
        ["FR", "FR", "BE", "CH", "UK", "US", "DE", "ES", "IT"]
        if language == "fr"
        else ["UK", "UK", "US", "US", "US", "FR", "BE", "CH", "DE", "ES", "IT"]
    )
    country = rng.choice(countries)
    number = str(rng.randint(1, 240))
    separator = rng.choice([", ", ", ", " ", "\n"]) if country in ("FR", "UK", "US") else ", "
    if country == "FR":
        number += rng.choice(["", "", "", "", " bis", " ter"])
        street = rng.choice(FR_STREETS)
        lead = f"{number} {street}" if rng.random() < 0.8 else f"{number}, {street}"
        return f"{lead}{separator}{rng.choice(FR_LOCALITIES)}"
    if country == "UK":
        lead = f"{number} {rng.choice(UK_STREETS)}"
        if rng.random() < 0.2:
            lead = f"Flat {rng.randint(1, 12)}, {lead}"
        return f"{lead}{separator}{rng.choice(UK_LOCALITIES)}"
    if country == "US":
        lead = f"{rng.randint(10, 9800)} {rng.choice(US_STREETS)}"
        if rng.random() < 0.25:
            lead += rng.choice([", Apt 4B", ", Suite 210", " #12"])
        return f"{lead}{separator}{rng.choice(US_LOCALITIES)}"
    streets, localities = {
        "BE": (BE_STREETS, BE_LOCALITIES),
        "CH": (CH_STREETS, CH_LOCALITIES),
        "DE": (DE_STREETS, DE_LOCALITIES),
        "ES": (ES_STREETS, ES_LOCALITIES),
        "IT": (IT_STREETS, IT_LOCALITIES),
    }[country]
    if country == "DE":
        number += rng.choice(["", "", "a"])
    return f"{rng.choice(streets)} {number}, {rng.choice(localities)}"


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    plain = re.sub(r"[^a-z]", "", _ascii(first).lower()), re.sub(r"[^a-z]", "", _ascii(last).lower())
    local = rng.choice(
        [
            f"{plain[0]}.{plain[1]}",
            f"{plain[0][0]}{plain[1]}",
            f"{plain[0]}{rng.randint(1, 99)}",
            f"{plain[1]}.{plain[0]}",
        ]
    )
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def _ascii(text: str) -> str:
    table = str.maketrans("éèêëàâäïîôöûüùçñśńłóíáú'", "eeeeaaaiioouuucnsnloiau ")
    return text.translate(table)


def birth_date(rng: random.Random, language: str) -> str:
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1940, 2006)
    if language == "fr":
        return rng.choice(
            [f"{day:02d}/{month:02d}/{year}", f"{day} {MONTHS_FR[month - 1]} {year}", f"{day:02d}.{month:02d}.{year}"]
        )
    return rng.choice(
        [
            f"{month:02d}/{day:02d}/{year}",
            f"{MONTHS_EN[month - 1]} {day}, {year}",
            f"{day} {MONTHS_EN[month - 1]} {year}",
            f"{year}-{month:02d}-{day:02d}",
        ]
    )


def age(rng: random.Random, language: str) -> str:
    years = rng.randint(18, 92)
    if language == "fr":
        return rng.choice([f"{years} ans"])
    return rng.choice([f"{years} years old", f"{years}-year-old", f"{years} yrs old"])


def _mod97(digits: str) -> int:
    return int(digits) % 97


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("FR", 27), ("DE", 22), ("BE", 16), ("ES", 24), ("GB", 22)])
    body = "NWBK" + _digits(rng, length - 8) if country == "GB" else _digits(rng, length - 4)
    numeric = "".join(str(int(char, 36)) for char in body + country + "00")
    compact = f"{country}{98 - _mod97(numeric):02d}{body}"
    return " ".join(compact[index : index + 4] for index in range(0, len(compact), 4))


def card(rng: random.Random) -> str:
    prefix = rng.choice(["4", "51", "53", "37", "6011"])
    length = 15 if prefix == "37" else 16
    while True:
        digits = prefix + _digits(rng, length - len(prefix))
        total = 0
        for position, char in enumerate(reversed(digits)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            break
    if length == 15:
        return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    return " ".join(digits[index : index + 4] for index in range(0, 16, 4))


def nir(rng: random.Random) -> str:
    body = f"{rng.choice('12')}{rng.randint(45, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 95):02d}"
    body += f"{rng.randint(1, 990):03d}{rng.randint(1, 990):03d}"
    key = 97 - int(body) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return f"2a01:e0a:{rng.randint(100, 999)}:{rng.randint(1000, 9999)}::{rng.randint(1, 99)}"
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def token_url(rng: random.Random) -> str:
    token = "".join(rng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(32))
    return rng.choice(
        [
            f"https://account.shop-demo.com/reset?token={token}",
            f"https://mail.brand.fr/u/{token}",
            f"https://crm.example.net/view?session={token[:24]}",
        ]
    )


GENERATORS = {
    "PERSON": lambda rng, language: person(rng),
    "FIRST": lambda rng, language: rng.choice(FIRST_NAMES),
    "LAST": lambda rng, language: rng.choice(LAST_NAMES),
    "ADDRESS": address,
    "PHONE": lambda rng, language: phone(rng),
    "EMAIL": lambda rng, language: email(rng),
    "DATE_OF_BIRTH": birth_date,
    "AGE": age,
    "IBAN": lambda rng, language: iban(rng),
    "PAYMENT_CARD": lambda rng, language: card(rng),
    "FR_NIR": lambda rng, language: nir(rng),
    "IP_ADDRESS": lambda rng, language: ip(rng),
    "URL_TOKEN": lambda rng, language: token_url(rng),
}
# Slot name -> labelled kind (FIRST and LAST are person names too).
SLOT_KIND = {"FIRST": "PERSON", "LAST": "PERSON"}


def _near_miss(rng: random.Random, name: str, language: str) -> str:
    if name == "product":
        return rng.choice(PRODUCTS_FR if language == "fr" else PRODUCTS_EN)
    if name == "named_product":
        return rng.choice(NAMED_PRODUCTS_FR if language == "fr" else NAMED_PRODUCTS)
    if name == "street_product":
        return rng.choice(STREET_PRODUCTS)
    if name == "brand":
        return rng.choice(BRANDS)
    if name == "city":
        return rng.choice(CITIES)
    if name == "order":
        return rng.choice(
            [
                f"CMD-{rng.randint(2023, 2025)}-{rng.randint(1, 999999):06d}",
                f"#{rng.randint(10**8, 10**9)}",
                f"{rng.randint(10**9, 10**10 - 1)}",
                f"FR{rng.randint(10**7, 10**8)}",
            ]
        )
    if name == "tracking":
        return rng.choice(
            [
                f"1Z{rng.randint(10**8, 10**9)}AB{rng.randint(10**5, 10**6)}",
                f"6A{_digits(rng, 11)}",
                f"LP{_digits(rng, 9)}FR",
            ]
        )
    if name == "date":
        return rng.choice(
            [
                f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025",
                f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                f"{rng.randint(1, 28)} {rng.choice(MONTHS_FR if language == 'fr' else MONTHS_EN)}",
            ]
        )
    if name == "price":
        return rng.choice(
            [
                f"{rng.randint(5, 900)},{rng.randint(0, 99):02d} €",
                f"£{rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
                f"${rng.randint(5, 900)}",
            ]
        )
    if name == "qty":
        return str(rng.randint(1, 12))
    if name == "sku":
        return f"SKU-{rng.choice('ABCDEFGH')}{_digits(rng, 6)}"
    if name == "percent":
        return f"{rng.randint(5, 70)}%"
    if name == "years":
        return str(rng.randint(2, 150))
    if name == "hours":
        return f"{rng.randint(8, 10)}:00-{rng.randint(17, 20)}:30"
    raise KeyError(name)


TEMPLATES_EN = [
    "CRM note: {PERSON} called on {date} about order {order}. Prefers a call back on {PHONE}.",
    "Ticket {order}: {PERSON} ({EMAIL}) reports that the {product} arrived damaged. Delivery address: {ADDRESS}.",
    "Order confirmation {order}: {qty} x {product}, total {price}. Ship to {PERSON}, {ADDRESS}.",
    "Review: love the {named_product}! Bought it at the {city} store, staff were lovely. Five stars. - {FIRST}",
    "Hi {FIRST}, your parcel {tracking} is on its way to {ADDRESS}. Questions? Call us on {PHONE}.",
    "Campaign brief: reach women 25-40 in {city} and {city}; hero product the {named_product}; budget {price}.",
    "Loyalty sign-up: {PERSON}, born on {DATE_OF_BIRTH}, {EMAIL}, mobile {PHONE}.",
    "Agent note: the customer is {AGE} and asked whether the {product} comes in a larger size.",
    "Please update the billing address of {title} {LAST} to {ADDRESS} before the next invoice.",
    "Refund of {price} to IBAN {IBAN} for {PERSON}, order {order}.",
    "Fraud check: card {PAYMENT_CARD} was used from IP {IP_ADDRESS} for order {order} on {date}.",
    "The {street_product} from our city collection is back in stock in {city}, {percent} off until {date}.",
    "{PERSON} left a 2-star review: the {product} faded after one wash and support never answered.",
    "Meeting with {brand} on {date} about the {city} pop-up store; the {named_product} will be the window piece.",
    "Dear {title} {LAST}, we could not reach you at {PHONE}. Please confirm your delivery address: {ADDRESS}.",
    "Password reset requested for {EMAIL}: {URL_TOKEN}",
    "Customer {PERSON} from {city} wants to return the {named_product}; order {order}, label sent.",
    "Call log {date}: inbound from {PHONE} ({PERSON}), issue solved, no follow-up needed.",
    "Shipping label\n{PERSON}\n{ADDRESS}\nTel: {PHONE}",
    "Influencer shortlist for the {city} launch: {PERSON} and {PERSON}, both via their agencies.",
    "Update from {FIRST}: my daughter is {AGE} so the teen range would suit her.",
    "Survey answer from {EMAIL}: delivery to {city} took two days, great packaging, will order again.",
    "Invoice {order} dated {date}: {qty} units of {sku}, net {price}, payment within 30 days.",
    "Our {brand} corner opens in {city} on {date}; the brand has been around for {years} years.",
    "Social: @shop thanks {FIRST} for the lovely photo of the {named_product}! #spring",
    "Escalation: {PERSON} says the courier left the parcel at {ADDRESS} instead of the neighbour's.",
    "Warranty claim from {title} {PERSON}, {AGE}, for the {product} bought in {city}; contact {PHONE}.",
    "Reminder: call {FIRST} {LAST} back on {PHONE} between {hours} about the {product}.",
    "Press kit sent to {brand}; the {street_product} shoot is scheduled for {date} in {city}.",
    "Newsletter A/B test: subject line B won by {percent}; next send {date}, segment {city} buyers.",
    "New account: {PERSON}, DOB {DATE_OF_BIRTH}, lives at {ADDRESS}.",
    "Chat transcript - customer: hi, I'm {PERSON}, my order {order} never arrived. agent: sorry {FIRST}!",
    "Store feedback {city}: the {named_product} display is empty again, restock {qty} units of {sku}.",
    "Direct debit mandate signed by {PERSON}, IBAN {IBAN}, first payment on {date}.",
    "Gift message from {FIRST}: happy birthday {FIRST}, enjoy the {product}!",
]
TEMPLATES_FR = [
    "Note CRM : {PERSON} a appelé le {date} au sujet de la commande {order}. Préfère être rappelé au {PHONE}.",
    "Ticket {order} : {PERSON} ({EMAIL}) signale que le {product} est arrivé abîmé. Adresse de livraison : {ADDRESS}.",
    "Confirmation de commande {order} : {qty} x {product}, total {price}. Livraison à {PERSON}, {ADDRESS}.",
    "Avis : j'adore le {named_product} ! Acheté à la boutique de {city}, vendeuses adorables. Cinq étoiles. {FIRST}",
    "Bonjour {FIRST}, votre colis {tracking} est en route vers le {ADDRESS}. Une question ? Appelez le {PHONE}.",
    "Brief campagne : cibler les femmes de 25 à 40 ans à {city} et {city} ; produit phare {named_product} ; "
    "budget {price}.",
    "Inscription fidélité : {PERSON}, né le {DATE_OF_BIRTH}, {EMAIL}, portable {PHONE}.",
    "Note conseiller : la cliente a {AGE} et demande si le {product} existe en taille plus grande.",
    "Merci de mettre à jour l'adresse de facturation de {title} {LAST} : {ADDRESS}.",
    "Remboursement de {price} sur l'IBAN {IBAN} pour {PERSON}, commande {order}.",
    "Contrôle fraude : carte {PAYMENT_CARD} utilisée depuis l'IP {IP_ADDRESS} pour la commande {order} du {date}.",
    "Le {street_product} de notre collection est de retour en stock à {city}, {percent} de remise jusqu'au {date}.",
    "{PERSON} a laissé un avis 2 étoiles : le {product} a déteint au premier lavage et le SAV n'a jamais répondu.",
    "Rendez-vous avec {brand} le {date} pour la boutique éphémère de {city} ; le {named_product} sera en vitrine.",
    "{title} {LAST}, nous n'avons pas pu vous joindre au {PHONE}. Merci de confirmer votre adresse : {ADDRESS}.",
    "Réinitialisation du mot de passe demandée pour {EMAIL} : {URL_TOKEN}",
    "Le client {PERSON}, de {city}, souhaite retourner le {named_product} ; commande {order}, étiquette envoyée.",
    "Journal d'appels {date} : appel entrant du {PHONE} ({PERSON}), problème résolu.",
    "Étiquette d'expédition\n{PERSON}\n{ADDRESS}\nTél : {PHONE}",
    "Sélection d'influenceurs pour le lancement à {city} : {PERSON} et {PERSON}, via leurs agences.",
    "Message de {FIRST} : ma fille a {AGE} donc la gamme ado lui irait bien.",
    "Réponse à l'enquête de {EMAIL} : livraison à {city} en deux jours, emballage soigné, je recommanderai.",
    "Facture {order} du {date} : {qty} unités de {sku}, montant HT {price}, paiement à 30 jours.",
    "Notre corner {brand} ouvre à {city} le {date} ; la marque a {years} ans cette année.",
    "Réseaux sociaux : merci {FIRST} pour la jolie photo du {named_product} ! #printemps",
    "Escalade : {PERSON} indique que le livreur a déposé le colis au {ADDRESS} au lieu de chez le voisin.",
    "Demande de garantie de {title} {PERSON}, {AGE}, pour le {product} acheté à {city} ; contact {PHONE}.",
    "Rappel : rappeler {FIRST} {LAST} au {PHONE} entre {hours} au sujet du {product}.",
    "Dossier de presse envoyé à {brand} ; le shooting du {street_product} est prévu le {date} à {city}.",
    "Test A/B newsletter : l'objet B gagne de {percent} ; prochain envoi le {date}, segment acheteurs de {city}.",
    "Nouveau compte : {PERSON}, date de naissance {DATE_OF_BIRTH}, domicilié au {ADDRESS}.",
    "Dossier mutuelle de {PERSON} : numéro de sécurité sociale {FR_NIR}.",
    "Retour magasin {city} : le présentoir {named_product} est vide, réassort de {qty} unités {sku}.",
    "Mandat de prélèvement signé par {PERSON}, IBAN {IBAN}, premier prélèvement le {date}.",
    "Mot du cadeau de {FIRST} : joyeux anniversaire {FIRST}, profite bien du {product} !",
]
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(rng: random.Random, template: str, language: str) -> tuple[str, list[Span]]:
    pieces: list[str] = []
    spans: list[Span] = []
    length = 0
    position = 0
    for match in _SLOT.finditer(template):
        literal = template[position : match.start()]
        pieces.append(literal)
        length += len(literal)
        name = match[1]
        if name == "title":
            value = rng.choice(TITLES_FR if language == "fr" else TITLES_EN)
        elif name in GENERATORS:
            value = GENERATORS[name](rng, language)
            spans.append(Span(SLOT_KIND.get(name, name), length, length + len(value)))
        else:
            value = _near_miss(rng, name, language)
        pieces.append(value)
        length += len(value)
        position = match.end()
    pieces.append(template[position:])
    return "".join(pieces), spans


def build_samples(count: int = 1200, seed: int = 20261202) -> list[Sample]:
    """`count` texts, half English and half French; one in five joins two messages (a longer thread)."""
    rng = random.Random(seed)
    samples = []
    for index in range(count):
        language = "en" if index % 2 == 0 else "fr"
        templates = TEMPLATES_EN if language == "en" else TEMPLATES_FR
        text, spans = _fill(rng, rng.choice(templates), language)
        if rng.random() < 0.2:
            more, more_spans = _fill(rng, rng.choice(templates), language)
            offset = len(text) + 1
            text = f"{text} {more}"
            spans += [Span(span.kind, span.start + offset, span.end + offset) for span in more_spans]
        samples.append(Sample(text, language, tuple(spans)))
    return samples
