"""Security fixtures: the conductor, gateway and review fixtures, so each attack runs against the real services,
and the whole mesh of stores for erasure and the data map."""

from tests.conductor.conftest import (  # noqa: F401  (fixtures)
    conductor_for,
    conductor_server,
    conductor_settings,
    conductor_via_proxy,
    embedding_proxy,
)
from tests.gateway.conftest import gateway_settings, start_gateway  # noqa: F401
from tests.generation.conftest import local_model  # noqa: F401
from tests.review.conftest import review, review_server, review_settings, start_review  # noqa: F401
from tests.security.subject_stores import mesh  # noqa: F401
