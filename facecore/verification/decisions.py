"""Every face decision in one place: the rule "same person iff distance <= threshold" and its voting forms.

* :func:`accepts` is the rule itself, for one distance or an array of them. Nothing else in the lab
  compares a distance with a threshold.
* :func:`verify` decides one pair; :func:`verify_against` decides a probe against several reference
  faces of one claimed person by a named :class:`Rule`; :func:`identify_decision` names the person
  behind a probe from its nearest gallery faces.
* Every answer is a :class:`Verdict` (or an :class:`Identification`) that says which rule decided,
  on which distance, against which threshold, and how the voters voted.

Rules for several references (Verify's voters mode, the API's ``/verify/person``):

* ``mean`` (the default): the mean distance to the references is compared with the threshold. The
  threshold was calibrated on single pairs; a mean of genuine distances has the same expectation with
  less spread, so both error rates fall as references are added.
* ``nearest``: the nearest reference decides. Each extra reference is another chance for a stranger to
  come close, so the false-accept rate grows with the number of references.
* ``majority``: more than half of the references accept.

Identification uses ``nearest`` by default (the nearest gallery face's person, when within the
threshold); ``majority`` names the k-NN vote's winner instead. Both are always reported, with
``agrees`` saying whether they name the same person.

>>> verdict = verify_against(np.zeros(2), np.array([[0.3, 0.0], [0.0, 0.5], [0.9, 0.0]]), threshold=0.6)
>>> verdict.same, round(verdict.distance, 3), verdict.votes, verdict.voters
(True, 0.567, 2, 3)
>>> verdict.sentence()
'Same person: mean euclidean distance 0.567 <= threshold 0.600 (2 of 3 references accept)'
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike

from facecore.types import Match
from facecore.verification.metrics import paired_distances

UNKNOWN = "unknown"


class Rule(StrEnum):
    """How several distances become one decision (see the module docstring)."""

    PAIR = "pair"
    MEAN = "mean"
    NEAREST = "nearest"
    MAJORITY = "majority"

    @property
    def label(self) -> str:
        return {
            Rule.PAIR: "distance",
            Rule.MEAN: "mean distance",
            Rule.NEAREST: "nearest distance",
            Rule.MAJORITY: "majority vote",
        }[self]


#: The rules a person can choose for several references, default first.
VOTING_RULES = (Rule.MEAN, Rule.NEAREST, Rule.MAJORITY)
DEFAULT_VOTING_RULE = Rule.MEAN
#: The rules for naming a probe from its nearest gallery faces, default first.
IDENTIFY_RULES = (Rule.NEAREST, Rule.MAJORITY)


def accepts(distance: ArrayLike, threshold: float) -> np.ndarray | bool:
    """The rule: same person iff ``distance <= threshold`` (element-wise for arrays).

    >>> accepts(0.5, 0.6), accepts(np.array([0.5, 0.6, 0.7]), 0.6).tolist()
    (True, [True, True, False])
    """
    result = np.asarray(distance) <= float(threshold)
    return bool(result) if result.ndim == 0 else result


@dataclass(frozen=True)
class Verdict:
    """One decision: ``same`` by ``rule`` on ``distance`` against ``threshold``, with the votes behind it.

    ``distance`` is what the rule compared (the pair's distance, the mean, or the nearest); ``distances``
    holds every reference's distance, ``votes`` how many of them are within the threshold.
    """

    same: bool
    distance: float
    threshold: float
    metric: str
    rule: Rule = Rule.PAIR
    distances: tuple[float, ...] = field(default=())
    votes: int = 0
    voters: int = 0

    @property
    def distance_name(self) -> str:
        """What :attr:`distance` is: ``distance`` for one pair, else the statistic of the references'
        distances the rule reads (``mean``, ``nearest``, ``median`` under majority)."""
        return {Rule.PAIR: "distance", Rule.MEAN: "mean", Rule.NEAREST: "nearest", Rule.MAJORITY: "median"}[self.rule]

    @property
    def accept_fraction(self) -> float:
        """Share of the references that accept on their own (seed 004's "confidence")."""
        return self.votes / self.voters if self.voters else float("nan")

    def sentence(self) -> str:
        """The decision in words, e.g. ``Same person: euclidean distance 0.412 <= threshold 0.614``."""
        verdict = "Same person" if self.same else "Different people"
        if self.rule is Rule.MAJORITY:
            return f"{verdict}: {self.votes} of {self.voters} references accept (majority rule, threshold {self.threshold:.3f})"
        what = f"{self.metric} distance" if self.rule is Rule.PAIR else f"{self.rule.label.split()[0]} {self.metric} distance"
        sign = "<=" if accepts(self.distance, self.threshold) else ">"
        votes = f" ({self.votes} of {self.voters} references accept)" if self.rule is not Rule.PAIR else ""
        return f"{verdict}: {what} {self.distance:.3f} {sign} threshold {self.threshold:.3f}{votes}"


def verify(a: ArrayLike, b: ArrayLike, *, threshold: float, metric: str = "euclidean") -> Verdict:
    """Are two embeddings the same person? One pair, one distance.

    >>> verify(np.array([0.0, 0.0]), np.array([0.3, 0.4]), threshold=0.6).distance
    0.5
    """
    distance = float(paired_distances(np.atleast_2d(a), np.atleast_2d(b), metric)[0])
    same = bool(accepts(distance, threshold))
    return Verdict(same, distance, float(threshold), metric, Rule.PAIR, (distance,), int(same), 1)


def verify_against(
    probe: ArrayLike,
    references: ArrayLike,
    *,
    threshold: float,
    metric: str = "euclidean",
    rule: Rule | str = DEFAULT_VOTING_RULE,
) -> Verdict:
    """Is ``probe`` the person whose reference embeddings are ``references`` (one per row)?"""
    rule = Rule(rule)
    refs = np.atleast_2d(np.asarray(references, dtype=np.float64))
    if refs.shape[0] == 0:
        raise ValueError("there are no reference faces to compare with")
    probes = np.repeat(np.atleast_2d(np.asarray(probe, dtype=np.float64)), refs.shape[0], axis=0)
    distances = paired_distances(probes, refs, metric)
    within = np.asarray(accepts(distances, threshold)).reshape(-1)
    votes = int(within.sum())
    if rule is Rule.NEAREST:
        decided, same = float(distances.min()), bool(accepts(distances.min(), threshold))
    elif rule is Rule.MAJORITY:
        decided, same = float(np.median(distances)), votes * 2 > len(distances)
    else:  # MEAN and PAIR (a single reference)
        decided = float(distances.mean())
        same = bool(accepts(decided, threshold))
    if rule is Rule.PAIR and len(distances) != 1:
        raise ValueError("the pair rule takes exactly one reference; choose mean, nearest or majority")
    return Verdict(same, decided, float(threshold), metric, rule, tuple(float(d) for d in distances), votes, len(distances))


@dataclass(frozen=True)
class Identification:
    """Who a probe is, from its nearest gallery faces (nearest first).

    ``name`` is the rule's answer (``"unknown"`` when nobody qualifies). ``nearest_name`` and
    ``vote_winner`` are the two rules' answers side by side; ``agrees`` says whether they agree.
    """

    matches: list[Match]
    best: Match | None
    name: str
    distance: float | None
    votes: dict[str, int]  # person name -> how many of the k nearest faces are theirs and within threshold
    vote_winner: str | None
    threshold: float = float("nan")
    rule: Rule = Rule.NEAREST

    @property
    def nearest_name(self) -> str:
        return self.best.person_name if self.best is not None and accepts(self.best.distance, self.threshold) else UNKNOWN

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    @property
    def person_id(self) -> int | None:
        """The id of the person the rule named (None for unknown)."""
        return next((m.person_id for m in self.matches if m.person_name == self.name), None) if self.known else None

    @property
    def agrees(self) -> bool:
        """True when the nearest face and the k-NN vote name the same person (or both say unknown)."""
        return self.nearest_name == (self.vote_winner or UNKNOWN)


def identify_decision(
    matches: Sequence[Match], *, threshold: float, rule: Rule | str = Rule.NEAREST
) -> Identification:
    """Name the probe behind ``matches`` (its nearest gallery faces, nearest first) by ``rule``."""
    rule = Rule(rule)
    if rule not in IDENTIFY_RULES:
        raise ValueError(f"identification rules are {', '.join(IDENTIFY_RULES)}, not {rule}")
    best = matches[0] if matches else None
    # Counter keeps first-seen order, i.e. nearest first, so equal counts list the nearest person first.
    ranked = dict(Counter(m.person_name for m in matches if accepts(m.distance, threshold)).most_common())
    winner = next(iter(ranked), None)
    result = Identification(
        matches=list(matches),
        best=best,
        name=UNKNOWN,
        distance=None if best is None else best.distance,
        votes=ranked,
        vote_winner=winner,
        threshold=float(threshold),
        rule=rule,
    )
    name = result.nearest_name if rule is Rule.NEAREST else (winner or UNKNOWN)
    return dataclasses.replace(result, name=name)
