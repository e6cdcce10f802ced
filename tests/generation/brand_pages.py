"""Brand pages to learn voices from: a French coffee roaster that says "tu", an English private bank."""

CAFE_PAGES = {
    "accueil": (
        "# Bienvenue chez Grain Sauvage\n\n"
        "Tu aimes le café qui a du caractère ? Tu es au bon endroit ! "
        "On torréfie chaque semaine, en petites fournées, dans notre atelier de Lyon. "
        "Ton café part le jour même et arrive chez toi en deux jours. "
        "Pas de stock qui dort, pas de grains fatigués : juste du frais."
    ),
    "abonnement": (
        "Avec l'abonnement, tu ne tombes plus jamais en panne de café. "
        "Tu choisis ton rythme, on s'occupe du reste. "
        "Tu peux mettre en pause quand tu veux, sans frais. "
        "C'est simple, c'est souple, et c'est torréfié pour toi !"
    ),
    "origines": (
        "Nos grains viennent de petites fermes en Éthiopie, au Pérou et en Colombie. "
        "On connaît les producteurs par leur prénom. "
        "Tu goûtes la différence dès la première tasse : des notes de fruits rouges, de cacao, de fleurs. "
        "Chaque sachet raconte une récolte."
    ),
    "atelier": (
        "Viens nous voir à l'atelier le samedi matin ! "
        "On t'offre une tasse et on te montre la torréfaction en direct. "
        "Tu repars avec un sachet moulu pour ta cafetière. "
        "Les grains sauvages, c'est une histoire de passion."
    ),
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
