"""Prompt templates: `{{variable}}` placeholders substituted verbatim, no logic.

"{{{{" is a literal "{{". Anything else that opens "{{" must be a well-formed
placeholder, so a typo is refused when the template is stored, not when it is used.
"""

import hashlib
import re

TOKEN = re.compile(r"\{\{\{\{|\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|\{\{")


class TemplateSyntaxError(ValueError):
    pass


def template_variables(text: str) -> set[str]:
    variables = set()
    for match in TOKEN.finditer(text):
        if match[0] == "{{{{":
            continue
        if match[1] is None:
            raise TemplateSyntaxError(f"'{{{{' at offset {match.start()} opens no valid {{{{variable}}}}")
        variables.add(match[1])
    return variables


def render(text: str, values: dict[str, str]) -> str:
    """Substitutes every placeholder; the caller has checked that `values` covers them."""

    def substitute(match: re.Match) -> str:
        return "{{" if match[0] == "{{{{" else values[match[1]]

    return TOKEN.sub(substitute, text)


def content_digest(system: str, template: str) -> str:
    # Length-prefixed so that moving text between the two parts changes the digest.
    digest = hashlib.sha256()
    for part in (system, template):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()
