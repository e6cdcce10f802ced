"""Security fixtures: the conductor, gateway and review fixtures, so each attack runs against the real services."""

from tests.conductor.conftest import (  # noqa: F401  (fixtures)
    conductor_for,
    conductor_server,
    conductor_settings,
    conductor_via_proxy,
    embedding_proxy,
)
from tests.gateway.conftest import gateway_settings, start_gateway  # noqa: F401
from tests.review.conftest import review, review_server, review_settings, start_review  # noqa: F401
