"""Chat messages to a raw prompt, with a Hugging Face style Jinja2 chat template.

The local model carries its template in its GGUF metadata; a TGI server's
`/generate` takes raw text, so its template comes from settings (ChatML by default).
Templates are rendered in Jinja2's immutable sandbox: they are configuration, not code.
"""

from collections.abc import Sequence

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from matcha.generation.backend import ChatMessage

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatTemplate:
    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = _raise_template_error
        self._template = environment.from_string(source)
        self._bos_token = bos_token
        self._eos_token = eos_token

    def render(self, messages: Sequence[ChatMessage]) -> str:
        return self._template.render(
            messages=[{"role": message.role, "content": message.content} for message in messages],
            add_generation_prompt=True,
            bos_token=self._bos_token,
            eos_token=self._eos_token,
        )


def _raise_template_error(message: str) -> None:
    raise TemplateError(message)
