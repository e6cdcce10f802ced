"""The `matcha` command."""

import click

from matcha.cli.campaign import campaign, outcomes
from matcha.cli.classify import classifier, classify, listen
from matcha.cli.embed import embed
from matcha.cli.generate import generate, voice
from matcha.cli.plans import audit, plan, run, trigger
from matcha.cli.redact import redact
from matcha.cli.review import review
from matcha.cli.segment import segment
from matcha.cli.stack import demo, up
from matcha.cli.subjects import data_map
from matcha.cli.tokens import keys, token


@click.group()
@click.version_option(package_name="matcha")
def cli() -> None:
    """Matcha: self-hosted AI services for marketing teams, governed on every hop."""


cli.add_command(up)
cli.add_command(demo)
cli.add_command(token)
cli.add_command(keys)
cli.add_command(plan)
cli.add_command(run)
cli.add_command(trigger)
cli.add_command(audit)
cli.add_command(data_map)
cli.add_command(embed)
cli.add_command(segment)
cli.add_command(classify)
cli.add_command(classifier)
cli.add_command(listen)
cli.add_command(generate)
cli.add_command(voice)
cli.add_command(review)
cli.add_command(redact)
cli.add_command(campaign)
cli.add_command(outcomes)
