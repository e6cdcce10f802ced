"""`matcha redact`: the personal-data engine on a data-protection officer's own samples, offline.

Reads a text (a file, or standard input), prints one JSON line per finding (kind, start, end, score; offsets in
characters) or, with `--redact`, the text with placeholders as the conductor would send it to a model. With
`--format jsonl` every line is a record (a JSON string, or an object with a `text` field) and findings carry the
record's index. Nothing leaves the machine: the engine runs in this process.
"""

import json
import secrets
import sys

import click

from matcha.conductor.redaction import Pseudonymiser
from matcha.runtime.errors import InvalidArgument
from matcha.runtime.pii import ALL_KINDS, MAX_TEXT_CHARS, PiiEngine


@click.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--format", "input_format", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option(
    "--language",
    type=click.Choice(["auto", "en", "fr"]),
    default="auto",
    show_default=True,
    help="Language of the NER; auto identifies it per text.",
)
@click.option("--redact", "redact_text", is_flag=True, help="Print the redacted text instead of the findings.")
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(sorted(ALL_KINDS)), help="Only these kinds (repeatable)."
)
def redact(source, input_format: str, language: str, redact_text: bool, kinds: tuple[str, ...]) -> None:
    """Find personal data in SOURCE (a file, or - for standard input).

    Texts longer than the engine's limit (1,000,000 characters each) and binary input are refused.
    """
    raw = source.read(4 * MAX_TEXT_CHARS + 1)
    if b"\x00" in raw:
        raise click.UsageError("the input is binary (NUL bytes), not text")
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise click.UsageError(f"the input is not UTF-8 text (byte {error.start})") from None
    texts = _records(content) if input_format == "jsonl" else [content]
    engine = PiiEngine()
    wanted = frozenset(kinds) or ALL_KINDS
    chosen = None if language == "auto" else language
    try:
        if redact_text:
            # A fresh key per invocation: placeholders mean nothing outside this output.
            pseudonymiser = Pseudonymiser(secrets.token_bytes(32), engine)
            for text in texts:
                redacted = pseudonymiser.redact(text, wanted).value
                click.echo(json.dumps({"text": redacted}, ensure_ascii=False) if input_format == "jsonl" else redacted)
            return
        for index, findings in enumerate(engine.analyze_many(texts, wanted, language=chosen, field="record")):
            for finding in findings:
                line = {"kind": finding.kind, "start": finding.start, "end": finding.end, "score": finding.score}
                if input_format == "jsonl":
                    line = {"record": index, **line}
                click.echo(json.dumps(line))
    except InvalidArgument as error:
        details = "; ".join(f"{violation.field}: {violation.description}" for violation in error.violations)
        raise click.UsageError(f"{error.message}: {details}") from None
    sys.stdout.flush()


def _records(content: str) -> list[str]:
    texts = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise click.UsageError(f"line {number} is not JSON") from None
        text = record.get("text") if isinstance(record, dict) else record
        if not isinstance(text, str):
            raise click.UsageError(f"line {number}: expected a JSON string or an object with a text field")
        texts.append(text)
    return texts
