"""How facts reach the prompt: the previous cycle's winning message is given to improve on, in the draft's language,
and what it said counts as grounded."""

from matcha.generation.facts import FactsInput, grounding_texts, render_facts

WINNER = "Notre Éthiopie lavé revient à 12,90 €.\nGoûtez-le avant dimanche."


def test_the_previous_winner_is_quoted_line_by_line_under_its_label():
    rendered = render_facts(FactsInput(segment_description="Fidèles", previous_winner=WINNER), "fr")
    lines = rendered.splitlines()
    assert "- Le message gagnant de la dernière campagne pour ce public, à améliorer, pas à recopier:" in lines
    assert lines[-2:] == ["  > Notre Éthiopie lavé revient à 12,90 €.", "  > Goûtez-le avant dimanche."]
    english = render_facts(FactsInput(previous_winner="Our washed Ethiopia is back."), "en")
    assert english.splitlines()[1].startswith("- The message that won the last campaign for this audience")


def test_what_the_winner_said_is_grounded_and_no_winner_adds_nothing():
    assert WINNER in grounding_texts(FactsInput(previous_winner=WINNER))
    assert render_facts(FactsInput(), "en") == ""
