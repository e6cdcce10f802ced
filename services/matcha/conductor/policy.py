"""The policy decision taken before every hop: allow, redact-then-allow, or deny, naming the rule."""

from dataclasses import dataclass

from matcha.conductor.audit import Decision
from matcha.runtime import pii
from matcha.runtime.governance import Clearance, DataClass

# What remains once personal identifiers are pseudonymised: the business content.
REDACTED_CLASS = DataClass.CONFIDENTIAL
# The downgrade stands only for what the engine detects; a redaction of fewer kinds does not earn it.
DOWNGRADE_KINDS = pii.ALL_KINDS


@dataclass(frozen=True)
class PolicyOutcome:
    decision: Decision
    rule: str
    # Class of the payload as it leaves (lower than the input's after a redaction).
    data_class_out: DataClass
    redact: bool
    # Kinds the redaction must cover for `data_class_out` to hold (empty when nothing is lowered).
    required_kinds: frozenset[str] = frozenset()

    @property
    def allowed(self) -> bool:
        return self.decision != Decision.DENY


def decide(data_class: DataClass, target: Clearance, *, step_redacts: bool) -> PolicyOutcome:
    """`data_class` is the class of the data the request is built from."""
    if data_class <= target.max_data_class:
        if step_redacts:
            return PolicyOutcome(Decision.REDACT, "step.redact", data_class, True)
        return PolicyOutcome(Decision.ALLOW, "clearance.within", data_class, False)
    if data_class == DataClass.PERSONAL and target.max_data_class >= REDACTED_CLASS:
        return PolicyOutcome(Decision.REDACT, "clearance.redact_personal", REDACTED_CLASS, True, DOWNGRADE_KINDS)
    rule = "clearance.outside_boundary" if not target.inside_trust_boundary else "clearance.exceeded"
    return PolicyOutcome(Decision.DENY, rule, data_class, False)
