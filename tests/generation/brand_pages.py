"""Brand pages to learn voices from: a French coffee roaster that says "tu", an English private bank."""

from importlib import resources

# The sample pages the demo learns its voice from.
CAFE_PAGES = {
    page.name.removesuffix(".md"): page.read_text().strip()
    for page in sorted(resources.files("matcha.generation").joinpath("samples", "grain-sauvage").iterdir())
    if page.name.endswith(".md")
}

BANK_PAGES = {
    "about": (
        "Aldwych Private Bank has served families and entrepreneurs since 1887. "
        "Our advisers work with a limited number of clients, which allows each relationship to receive "
        "the attention it deserves. We manage assets with prudence, discretion and a long-term perspective. "
        "Every recommendation is reviewed by our investment committee."
    ),
    "wealth": (
        "Wealth planning begins with a thorough understanding of your objectives. "
        "Your adviser will assess your estate, your tax position and your obligations to future generations. "
        "We then propose a strategy that balances preservation of capital with measured growth. "
        "Progress is reported to you each quarter in a detailed statement."
    ),
    "lending": (
        "We provide bespoke lending secured against property, portfolios and other assets. "
        "Terms are structured around the particular circumstances of each client. "
        "Decisions are taken by experienced credit officers rather than automated systems. "
        "Your adviser will remain your single point of contact throughout."
    ),
}

# Off-voice for the coffee roaster: formal, "vous", long sentences about something else.
FORMAL_FRENCH = (
    "Nous vous prions de bien vouloir trouver ci-joint le relevé trimestriel de votre portefeuille, "
    "établi conformément aux dispositions contractuelles en vigueur et aux recommandations de notre comité "
    "d'investissement, lequel s'est réuni à l'issue de la clôture des marchés afin d'examiner l'ensemble des "
    "positions détenues pour votre compte. Vous pouvez contacter votre conseiller pour toute précision."
)

ON_VOICE_FRENCH = (
    "Tu cherches un café qui réveille vraiment ? Notre nouvelle fournée d'Éthiopie sort de l'atelier. "
    "On l'a torréfiée ce matin, en petite quantité. Tu la reçois chez toi en deux jours !"
)
