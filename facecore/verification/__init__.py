"""From embeddings to decisions: distances and metrics, thresholds with a source, and the decision rules.

* :mod:`~facecore.verification.metrics`: distances, ROC, EER, FAR/FRR sweeps, k-fold and bootstrap;
* :mod:`~facecore.verification.thresholds`: the default threshold of a configuration and its source;
* :mod:`~facecore.verification.decisions`: ``accepts``, ``verify``, ``verify_against`` and
  ``identify_decision``, the only code that decides "same person".
"""

from facecore.verification.decisions import (
    DEFAULT_VOTING_RULE,
    IDENTIFY_RULES,
    UNKNOWN,
    VOTING_RULES,
    Identification,
    Rule,
    Verdict,
    accepts,
    identify_decision,
    verify,
    verify_against,
)
from facecore.verification.thresholds import Threshold, default_threshold

__all__ = [
    "DEFAULT_VOTING_RULE",
    "IDENTIFY_RULES",
    "UNKNOWN",
    "VOTING_RULES",
    "Identification",
    "Rule",
    "Threshold",
    "Verdict",
    "accepts",
    "default_threshold",
    "identify_decision",
    "verify",
    "verify_against",
]
