"""Policy as code: the shipped policy, the consent view, decisions and data minimisation.

Typical use in the router::

    policy = default_policy()            # or load_policy(path); validated at start
    consents = ConsentView()              # rebuilt from the consent topic via apply()
    decision = decide(request, policy, consents)
    if decision.permit:
        outgoing = project(bundle, decision.allowed_categories, subject_stub=stub)
"""

from broker.policy.consent_view import (
    ConsentChange,
    ConsentChangeKind,
    ConsentView,
)
from broker.policy.decision import (
    Decision,
    DecisionRequest,
    ReasonCode,
    decide,
)
from broker.policy.loader import (
    PolicyError,
    default_policy,
    load_policy,
    load_policy_text,
)
from broker.policy.minimise import (
    contains_personal_data,
    message_categories,
    project,
    project_bytes,
)
from broker.policy.model import Policy

__all__ = [
    "ConsentChange",
    "ConsentChangeKind",
    "ConsentView",
    "Decision",
    "DecisionRequest",
    "Policy",
    "PolicyError",
    "ReasonCode",
    "contains_personal_data",
    "decide",
    "default_policy",
    "load_policy",
    "load_policy_text",
    "message_categories",
    "project",
    "project_bytes",
]
