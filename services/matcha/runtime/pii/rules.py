"""Context rules beside the NER: a postal-address grammar, dates of birth, ages tied to a person, person cues.

The address grammar knows the street words and layouts of the countries served (house number before or after the
street, postcode before or after the city); it needs a house number or a postbox, so a street named in a product
description or a city named in a review is not an address.
"""

import re
from collections.abc import Iterator

from matcha.runtime.pii.kinds import ADDRESS, AGE, DATE_OF_BIRTH, PERSON, Finding

_UPPER = "A-ZÀ-ÖØ-ÞŁŒŠŽ"
_WORD = rf"[{_UPPER}][\w'\u2019.-]*"
# Lowercase words allowed inside street and city names.
_LINK = (
    r"(?:de|du|des|la|le|les|l['\u2019]|d['\u2019]|of|the|on|upon|del|de la|della|delle|degli|dei|di|da|van|von|der|"
    r"den|aux|au|sur|sous|en|et|y|e|am|an|im|zum|zur|bei)"
)
_NAME = rf"(?:{_WORD}|\d+(?:st|nd|rd|th|e|er|ème)?|{_LINK})"
_NUMBER = r"\d{1,5}(?:[ ]?(?:bis|ter|quater|[A-Ha-h])\b)?(?:[-/]\d{1,4}[A-Za-z]?)?"
# A house number written after the street (German, Dutch, Spanish, Italian, Belgian layouts): not a year.
_AFTER_NUMBER = r"[1-9]\d{0,2}(?:[ ]?[a-hA-H]\b|[-/]\d{1,3})?"
_FR_STREET = (
    r"(?:rue|avenue|av\.|bd|boulevard|blvd|place|pl\.|allée|allee|impasse|imp\.|chemin|ch\.|quai|route|rte|cours|"
    r"square|passage|faubourg|fbg|chaussée|rond-point|esplanade|parvis|sentier|résidence|lotissement|cité|hameau|"
    r"promenade|voie|montée|traverse|clos|villa|lieu-dit|drève|avenida)"
)
_EN_STREET = (
    r"(?:Street|St|Avenue|Ave|Av|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Way|Terrace|Terr|Close|"
    r"Crescent|Cres|Square|Sq|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Trail|Row|Mews|Grove|Gardens|Gdns|Hill|Walk|Green|"
    r"Parade|Broadway|Alley|Plaza|Pike|Loop|Rise|View|Wharf|Quay|Yard)"
)
_DE_STREET = (
    r"(?:[sS]tra(?:ß|ss)e|[sS]tr\.|[gG]asse|[wW]eg|[pP]latz|[aA]llee|[dD]amm|[cC]haussee|[sS]teig|[pP]fad|[sS]traat|"
    r"[lL]aan|[gG]racht|[pP]lein|[kK]ade|[dD]ijk|steenweg)"
)
_ES_IT_STREET = (
    r"(?:Calle|C/|Avenida|Avda\.?|Plaza|Pza\.?|Paseo|Pº|Camino|Carrer|Carretera|Ctra\.?|Ronda|Travesía|Gran Vía|Rúa|"
    r"Via|Viale|V\.le|Piazza|P\.zza|Piazzale|Corso|C\.so|Largo|Vicolo|Strada|Lungomare|Lungotevere|Contrada|"
    r"Rue|Avenue|Boulevard|Place|Chaussée|Chemin|Quai|Route)"
)
_UNIT = (
    r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Bldg|Building|Room|Appt|Appartement|Bât|Bâtiment|Étage|Escalier|"
    r"Piso|Puerta|Scala|Interno|int\.|#)"
)
_CITY_WORD = rf"(?:St\.|Ste\.|[{_UPPER}][\w'\u2019-]*)"
_CITY = rf"{_CITY_WORD}(?:(?:[ -]|-{_LINK}-)(?:{_CITY_WORD}|{_LINK}(?=[ -][{_UPPER}])))" r"{0,3}"
_US_STATE = (
    r"(?:A[LKZR]|C[AOT]|D[EC]|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[TA]|"
    r"W[AVIY]|ON|QC|BC|AB|NSW|VIC|QLD)"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}"
_COUNTRY = (
    r"(?:France|Belgique|Belgium|België|Suisse|Switzerland|Schweiz|Svizzera|UK|U\.K\.|United Kingdom|England|"
    r"Scotland|Wales|Ireland|USA|U\.S\.A\.|US|United States|Canada|Deutschland|Germany|Allemagne|España|Spain|"
    r"Espagne|Italia|Italy|Italie|Luxembourg|Nederland|Netherlands|Pays-Bas|Portugal|Austria|Österreich|Monaco)"
)
# Postcode and city after the street: "75002 Paris", "1000 Bruxelles", "10115 Berlin", "Londres SW1A 1AA",
# "Springfield, IL 62704", "Manchester M1 1AE", "20121 Milano (MI)"; then an optional country.
_LOCALITY = (
    rf"(?:,?[ ]*(?:\n[ ]*)?(?:(?:[A-Z]{{1,2}}-)?\d{{4,5}}[ ]+{_CITY}(?:[ ]+(?:CEDEX|"
    rf"Cedex)(?:[ ]+\d{{1,2}})?)?(?:[ ]*\([A-Z]{{2}}\))?"
    rf"|\d{{4}}[ ]?[A-Z]{{2}}[ ]+{_CITY}"
    rf"|{_CITY}(?:,?[ ]+{_US_STATE}\b)?(?:,?[ ]+(?:\d{{5}}(?:-\d{{4}})?|{_UK_POSTCODE}|[A-Z]\d[A-Z][ ]?\d[A-Z]\d))"
    rf"|{_UK_POSTCODE}"
    rf"|{_CITY}(?=[ ]*(?:,[ ]*{_COUNTRY}\b|[.;)\n]|$))"
    rf"))?(?:,?[ ]+{_COUNTRY}\b)?"
)
_UNIT_PART = rf"(?:,?[ ]*{_UNIT}\.?[ ]*[\w-]{{1,6}}\b)?"

_ADDRESSES = [
    # 12 rue de la Paix, 75002 Paris / 3 bis, avenue Foch
    re.compile(
        rf"(?<![\w/-]){_NUMBER},?[ ]+(?i:{_FR_STREET})[ ]+(?:{_NAME}[ ]){{0,6}}(?:{_WORD}|\d+){_UNIT_PART}{_LOCALITY}",
    ),
    # 221B Baker Street, London NW1 6XE / 1600 Pennsylvania Ave NW, Washington, DC 20500
    re.compile(
        rf"(?<![\w/-]){_NUMBER}[ ]+(?:(?:N|S|E|W|North|South|East|West)\.?[ ]+)?(?:{_NAME}[ ]+){{0,4}}{_EN_STREET}\b\.?"
        rf"(?:[ ]+(?:N|S|E|W|NE|NW|SE|SW)\b)?{_UNIT_PART}{_LOCALITY}"
    ),
    # Bahnhofstrasse 21, 8001 Zürich / Kurfürstendamm 21 / Keizersgracht 123, 1015 CJ Amsterdam
    re.compile(
        rf"(?<![\w-])(?:[{_UPPER}][\w.-]*[ -])?[{_UPPER}]?[\wäöüß-]*{_DE_STREET}[ ]+{_AFTER_NUMBER}\b"
        rf"{_UNIT_PART}{_LOCALITY}"
    ),
    # Calle de Alcalá 42, 28014 Madrid / Via Roma 12, 00184 Roma / Rue de la Loi 16, 1000 Bruxelles
    re.compile(
        rf"(?<![\w-]){_ES_IT_STREET}[ ]+(?:{_NAME}[ ]){{0,5}}{_NAME},?[ ]*(?:n[º°o]\.?[ ]*)?{_AFTER_NUMBER}\b"
        rf"(?:,?[ ]*\d{{1,2}}[º°ª]?[ ]?[A-Z]?\b)?{_UNIT_PART}{_LOCALITY}"
    ),
    # Flat 3, 12 Baker Street is covered above; a postbox stands for an address of its own.
    re.compile(
        rf"(?<![\w-])(?:P\.?[ ]?O\.?[ ]?Box|PO Box|B\.?P\.?|Boîte postale|Postfach|Apartado)[ ]+\d{{1,6}}{_LOCALITY}"
    ),
]

_MONTHS = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|janvier|février|fevrier|mars|avril|mai|juin|juillet|août|"
    r"aout|septembre|octobre|novembre|décembre|decembre|janv|févr|avr|juil|déc)\.?"
)
_DATE = re.compile(
    rf"(?i:\b\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:19|20)?\d{{2}}\b|\b(?:19|20)\d{{2}}-\d{{2}}-\d{{2}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th|er|e)?[ ]+(?:of[ ]+)?{_MONTHS}[ ,]+(?:19|20)\d{{2}}\b"
    rf"|\b{_MONTHS}[ ]+\d{{1,2}}(?:st|nd|rd|th)?,?[ ]+(?:19|20)\d{{2}}\b)"
)
_BIRTH_CUE = re.compile(
    r"(?i)(?:\bborn\b|\bbirth|\bd\.?o\.?b\b|\bbday\b|\bnée?s?\b|\bnaissance\b|\banniversaire\b|\bnacid[oa]\b|"
    r"\bgeboren\b|\bnat[oa]\b)[^.!?\n\d]{0,25}$"
)
_AGE_EXPLICIT = re.compile(
    r"(?i)\b(?:aged|age|âgée?s?(?:[ ]+de)?|âge|edad|alter|età)[ ]*:?[ ]*(\d{1,3})(?:[ ]*(?:ans|years?|yrs?|"
    r"y\.?o\.?))?\b"
)
_AGE_PHRASE = re.compile(r"(?i)\b(\d{1,3})(?:[ -]*(?:years?|yrs?)[ -]*old|[ -]?y\.?o\.?(?=\W)|[ ]*ans\b|-year-old)")
_AGE_OWNER = re.compile(
    r"(?i)(?:\b(?:i|i'm|i\u2019m|he|she|they|he's|she's|who|whose|my|his|her|their|son|daughter|wife|husband|mother|"
    r"father|mum|mom|dad|child|kid|customer|client|cliente|j['\u2019]ai|il|elle|fils|fille|femme|mari|mère|père|enfant|"
    r"qui|mon|ma|nos)\b[^.!?\n]{0,20}$|[,(][ ]*$)"
)
TITLES = (
    r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lord|Lady|M|Mme|Mlle|Mmes|MM|Pr|Madame|Monsieur|Mademoiselle|Maître|"
    r"Docteur|Herr|Frau|Sr|Sra|Srta|Sig|Sig\.ra|Signor|Signora)"
)
_TITLED = re.compile(
    rf"(?<![\w.]){TITLES}\.?[ ]+((?:[{_UPPER}][\w'\u2019-]+|[{_UPPER}]\.)(?:[ ]+(?:(?:van|von|de|del|da|di|le|la|du|"
    rf"des|bin|ibn|al|el)[ ]+)?[{_UPPER}][\w'\u2019-]+){{0,3}})"
)
_GREETED = re.compile(
    rf"(?i:\b(?:hi|hello|hey|dear|bonjour|bonsoir|salut|coucou|cher|chère|thanks|thank you|merci|hola|ciao|hallo))[ ,]+"
    rf"([{_UPPER}][\w'\u2019-]+(?:[ ]+[{_UPPER}][\w'\u2019-]+){{0,2}})(?=[ ]*[,!.:;\n])"
)
# A name: capitalised words, with the particles of several naming cultures between them.
_NAME_WORDS = (
    rf"[{_UPPER}][\w'\u2019-]+(?:[ ]+(?:(?:van der|van den|van|von|de la|de|del|della|da|di|dos|du|le|la|bin|ibn|al|"
    rf"el|ben)[ ]+)?"
    rf"[{_UPPER}][\w'\u2019-]+){{0,3}}"
)
# Words that announce a person's name before it ("merci Rachid", "signed by ...", "from Olga:", "- Mamadou").
_CUE_BEFORE = re.compile(
    r"(?i:\b(?:thanks|thank you|many thanks|merci|sorry|désolée?|happy birthday|joyeux anniversaire|bon anniversaire|"
    r"i'm|i am|je suis|my name is|je m'appelle|name|nom|signed by|signée? par|regards|cordialement|best|bisous|"
    r"rappeler|appeler|call|call back|contact|customer|client|cliente|cc|attn)\b[ ]*[:,]?[ ]*|(?:^|"
    r"\n|[.!?)][ ]+)[-\u2013\u2014~][ ]*(?=[^\n]{1,40}$)|"
    r"\b(?:from|de|by|par)[ ]+(?=[^ ]+(?:[ ][^ ]+)?[ ]?:))"
    rf"({_NAME_WORDS})"
)
# ... or after it, for full names: "Lucía Sharma says", "Mamadou El Amrani, DOB", "Francesca Fontaine (".
_FULL_NAME = (
    rf"[{_UPPER}][\w'\u2019-]+(?:[ ]+(?:(?:van der|van|von|de|del|da|di|du|le|la|bin|al|el|ben|De|Van|El|Al)[ ]+)?"
    rf"[{_UPPER}][\w'\u2019-]+){{1,3}}"
)
_CUE_AFTER = re.compile(
    rf"(?<![\w'\u2019-])({_FULL_NAME})"
    r"(?=[ ]*(?:\([^)]*@|,[ ]*(?i:born|née?|dob|date of birth|date de naissance|\d{1,3}[ ]*(?:ans|years|yrs)\b)|"
    r"[ ]+(?:says|said|reports|writes|wrote|asked|asks|left|called|wants|would like|a appelé|appelle|signale|indique|"
    r"écrit|demande|a laissé|souhaite|voudrait|aimerait)\b))",
)
_TITLE_PREFIX = re.compile(rf"^(?:{TITLES}\.?(?:[ ]+|$))+")
# A full name joined to a name already found ("Harry Lambert and Valentina Girard"), or in brackets after a phone
# number or an e-mail address ("inbound from 0113 265 1470 (Valentina Fontaine)").
_COORDINATED = re.compile(rf"[ ]+(?:and|et|&|y|und|e)[ ]+({_FULL_NAME})\b")
_BRACKETED = re.compile(rf"[ ]*\(({_FULL_NAME})\)")


def addresses(text: str) -> Iterator[Finding]:
    for pattern in _ADDRESSES:
        for match in pattern.finditer(text):
            value = match[0].rstrip(" ,.;:-")
            yield Finding(ADDRESS, match.start(), match.start() + len(value), value, 0.9)


def dates_of_birth(text: str) -> Iterator[Finding]:
    for match in _DATE.finditer(text):
        if _BIRTH_CUE.search(text, max(0, match.start() - 40), match.start()):
            yield Finding(DATE_OF_BIRTH, match.start(), match.end(), match[0], 0.9)


def ages(text: str, persons: list[Finding]) -> Iterator[Finding]:
    """Ages said of someone: explicit ("aged 34", "âgée de 34 ans") or a phrase beside a person or a pronoun."""
    person_ends = {finding.end for finding in persons}
    for match in _AGE_EXPLICIT.finditer(text):
        if int(match[1]) <= 120:
            yield Finding(AGE, match.start(), match.end(), match[0], 0.85)
    for match in _AGE_PHRASE.finditer(text):
        if int(match[1]) > 120:
            continue
        before = text[max(0, match.start() - 30) : match.start()]
        near_person = any(end in person_ends for end in range(max(0, match.start() - 4), match.start() + 1))
        if near_person or _AGE_OWNER.search(before):
            yield Finding(AGE, match.start(), match.end(), match[0], 0.75)


def titled_persons(text: str) -> Iterator[Finding]:
    """A capitalised name after a title ("Mme Benali", "Dr. O'Neill"), which small NER models often miss."""
    for match in _TITLED.finditer(text):
        yield Finding(PERSON, match.start(1), match.end(1), match[1], 0.85)


def greeted_persons(text: str) -> Iterator[Finding]:
    """The name a message is addressed to ("Hi Priya,", "Bonjour Camille !")."""
    for match in _GREETED.finditer(text):
        start = match.start(1) + strip_title(match[1])
        if start < match.end(1):
            yield Finding(PERSON, start, match.end(1), text[start : match.end(1)], 0.7)


def cued_persons(text: str) -> Iterator[Finding]:
    """Names announced by the words around them, which a small NER model misses out of context."""
    for pattern, group in ((_CUE_BEFORE, 1), (_CUE_AFTER, 1)):
        for match in pattern.finditer(text):
            start = match.start(group) + strip_title(match[group])
            if start < match.end(group):
                yield Finding(PERSON, start, match.end(group), text[start : match.end(group)], 0.7)


def companions(text: str, persons: list[Finding], contacts: list[Finding]) -> Iterator[Finding]:
    """Full names beside a name already found, or bracketed after a phone number or an e-mail address."""
    for finding in persons:
        match = _COORDINATED.match(text, finding.end)
        if match:
            yield Finding(PERSON, match.start(1), match.end(1), match[1], 0.7)
    for finding in contacts:
        match = _BRACKETED.match(text, finding.end)
        if match:
            yield Finding(PERSON, match.start(1), match.end(1), match[1], 0.7)


def addressees(text: str, found: list[Finding]) -> Iterator[Finding]:
    """The name on the line (or the clause) just before an address: who the parcel or the letter is for."""
    for address in found:
        before = text[max(0, address.start - 60) : address.start]
        match = _ADDRESSEE.search(before)
        if match:
            start = address.start - len(before) + match.start(1)
            start += strip_title(text[start : start + len(match[1])])
            end = address.start - len(before) + match.end(1)
            if start < end:
                yield Finding(PERSON, start, end, text[start:end], 0.7)


_ADDRESSEE = re.compile(rf"(?:^|[\n:]|\bto |\bà )[ ]*((?:{TITLES}\.?[ ]+)?{_NAME_WORDS})[ ]*(?:,|\n)[ ]*$")


def strip_title(value: str) -> int:
    """How many leading characters of a name are a title ("Mrs. ", "Mme ")."""
    match = _TITLE_PREFIX.match(value)
    return match.end() if match else 0
