"""LINK / CREATE / REVIEW for one update, from its candidates and the shielding policy.

Pure: the caller gathers what the database knows (source link, candidates,
invalidated identifiers, protected addresses, operators' "not a match") and
applies the decision. The order of the rules is the safety argument:

1. a source link is the strongest tie, unless the identity behind it was severed;
2. an invalidated NHS number never links;
3. a valid NHS number with the same date of birth ties an update to its record;
4. any other plausible shielded (or severed) candidate sends the update to a person:
   no update about a shielded child ever creates a record or links by guesswork;
5. otherwise the match probability decides, with ambiguity going to a person;
6. nothing writes a shielded child's address into an unshielded record.

The pipeline reads an update with a source link or an NHS number partially
(Facts.partial): its children by id and NHS number and every shielded or severed
candidate. Rules 1-3 decide on that alone; where they would not (rules 4-5, or a
person to see the best candidates) `decide` answers MORE and is asked again with
every candidate (tests/unit/test_decide_partial.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from mypy_extensions import mypyc_attr
from rapidfuzz.distance import OSA

from hub.config import Thresholds
from hub.match.compare import DISAGREE, EXACT, MISSING, Prepared, prepare, prepared
from hub.match.model import DEFAULT_MODEL, Model, TermFrequencies
from hub.match.normalise import date_slips, name_key, name_parts
from hub.match.score import MatchScore, score, score_prepared
from hub.places import contact_keys, key_postcode, same_dwelling
from hub.records import Record, merge

LINK, CREATE, REVIEW, NOOP = "link", "create", "review", "noop"
#: Not a decision: the facts hold only some candidates (Facts.partial) and the rules
#: need them all. The caller reads every candidate of the update and asks again.
MORE = "more"


@mypyc_attr(allow_interpreted_subclasses=True)  # a bulk load's CachedMatcher (hub.native)
@dataclass(frozen=True)
class Matcher:
    """The scoring model in force and the index's name frequencies."""

    model: Model = DEFAULT_MODEL
    tf: TermFrequencies | None = None

    def score(self, update: Mapping[str, Any] | Prepared,
              record: Mapping[str, Any] | Prepared) -> MatchScore:
        if type(update) is Prepared and type(record) is Prepared:  # a batch's pairs
            return score_prepared(update, record, self.model, self.tf)
        return score(update, record, self.model, self.tf)

    def prepare(self, child: Mapping[str, Any]) -> Prepared:
        """The update's normal forms (a bulk load hands over its workers'). The
        caller keeps them (BatchState.form_of): made afresh, not remembered."""
        return prepare(child)


DEFAULT_MATCHER = Matcher()


class CandidateLike(Protocol):
    """What the rules read of a candidate (hub.batch.ChildRow is one)."""

    @property
    def child_id(self) -> str: ...
    @property
    def record(self) -> Mapping[str, Any]: ...
    @property
    def shielded(self) -> bool: ...
    @property
    def severed(self) -> bool: ...
    @property
    def authority(self) -> str | None: ...  # the shielding authority, if shielded
    @property
    def normal_form(self) -> Prepared: ...
    @property
    def nhs_and_dob(self) -> tuple[str, str]: ...  # date of birth as YYYYMMDD
    def scored_by(self, update: Prepared, matcher: Matcher) -> MatchScore: ...


class Candidate(NamedTuple):  # a tuple: thousands are made a batch, cheaply
    child_id: str
    record: Mapping[str, Any]
    shielded: bool = False
    severed: bool = False
    match: Prepared | None = None  # the record's normal forms, when the index stored them
    authority: str | None = None  # the shielding authority, if shielded

    @property
    def normal_form(self) -> Prepared:
        return self.match if self.match is not None else prepared(self.record)

    @property
    def nhs_and_dob(self) -> tuple[str, str]:
        p = self.normal_form
        return p.nhs, p.dob_s

    def scored_by(self, update: Prepared, matcher: Matcher) -> MatchScore:
        return matcher.score(update, self.normal_form)


@dataclass(frozen=True)
class SourceLink:
    child_id: str
    last_version: int
    severed: bool = False


_NO_AUTHORITIES: Mapping[str, str | None] = MappingProxyType({})
_NO_CONTACTS: Mapping[str, frozenset[str]] = MappingProxyType({})


class Facts(NamedTuple):  # a tuple: one is made for every update, often twice
    """What the index knows that bears on one update."""

    link: SourceLink | None = None
    candidates: tuple[CandidateLike, ...] = ()
    invalidated_for: str | None = None  # child whose severed identity held this NHS number
    not_a_match: frozenset[str] = frozenset()
    # shielded children whose current address the update's is (hub.places.near's
    # `at`; one whose address is not known: taken to be)
    protected_address_of: frozenset[str] = frozenset()
    # the shielding authority, where the index knows it, of each child in
    # protected_address_of, protected_nearby_of and protected_contact_of
    # (absent: not known)
    holder_authority: Mapping[str, str | None] = _NO_AUTHORITIES
    # The candidates are only those found by id or NHS number and every shielded or
    # severed one (how the pipeline reads an update with a source link or an NHS
    # number): enough for a source link, an invalidated NHS number or an NHS number
    # tie to decide; any other rule answers MORE.
    partial: bool = False
    # shielded children the update's address comes near (hub.places.near: her
    # current postcode, a former address, lines of an address without a postcode;
    # rule 6 protects the street: an address is written many ways, "3 Harbour Ln",
    # "Flat A, 3 Harbour Lane"), those at it included
    protected_nearby_of: frozenset[str] = frozenset()
    # the phone numbers and email addresses in the update's carers and services
    # (hub.places.contact_keys) that a shielded child's record holds or held, each
    # with those children
    protected_contact_of: Mapping[str, frozenset[str]] = _NO_CONTACTS
    # the highest version of the update's source record waiting in review, if any
    waiting: int | None = None
    # an update born the update's day at its postcode waits in review (migration 0029)
    birth_waiting: bool = False

    @property
    def protected_near(self) -> frozenset[str]:
        """The shielded children the update comes near (at her address, near it, or
        carrying her carers' or services' contacts)."""
        near = self.protected_nearby_of | self.protected_address_of
        for holders in self.protected_contact_of.values():
            near |= holders
        return near


class Scored(NamedTuple):  # a tuple: thousands are made a batch, cheaply
    child_id: str
    probability: float
    identity_probability: float
    shielded: bool
    severed: bool
    explanation: MatchScore | None = None

    def summary(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "score": round(self.probability, 4)}


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    child_id: str | None = None
    candidates: tuple[Scored, ...] = field(default_factory=tuple)
    model_version: str | None = None


def _score_all(child: Record, facts: Facts, matcher: Matcher,
               shielded_only: bool = False, form: Prepared | None = None) -> list[Scored]:
    out = []
    update = form if form is not None else matcher.prepare(child)
    # In the order of their ids, so that equal scores always rank alike.
    for cand in sorted(facts.candidates, key=_child_id):
        if cand.child_id in facts.not_a_match:
            continue
        if shielded_only and not (cand.shielded or cand.severed):
            continue
        s = cand.scored_by(update, matcher)
        out.append(
            Scored(
                cand.child_id,
                s.probability,
                s.identity_probability,
                cand.shielded,
                cand.severed,
                s,
            )
        )
    out.sort(key=lambda c: c.probability, reverse=True)
    return out


def _child_id(c: CandidateLike) -> str:
    return c.child_id


def _top(child: Record, facts: Facts, matcher: Matcher, thresholds: Thresholds,
         form: Prepared | None) -> tuple[Scored, ...]:
    """The five best-scored candidates, for a person to see (`_shown`)."""
    scored = _score_all(child, facts, matcher, form=form)
    return _shown(scored, _plausible(child, scored, facts, thresholds))


def _holders(child: Record, facts: Facts) -> set[str]:
    """The candidates holding the update's NHS number or unique pupil number. Each
    could be its child whatever else differs (renamed, her date mistyped, at a
    refuge): for a shielded child a miss is an open duplicate holding her identifier
    and her new address."""
    nhs = child.get("nhs_number")
    upn = prepared(child).upn if child.get("upn") else ""
    if not (nhs or upn):
        return set()
    return {c.child_id for c in facts.candidates
            if (nhs and c.nhs_and_dob[0] == nhs) or (upn and c.normal_form.upn == upn)}


def _shown(scored: list[Scored], plausible: list[Scored],
           holders: Collection[str] = ()) -> tuple[Scored, ...]:
    """The five best of `scored` that a person may see with the update: not a shielded
    or severed child that could not be this one (not in `plausible`, rule 4's test).
    One found by the postcode alone, say, would tell whoever reviews the update that
    a hidden child lives at its postcode: a search by a hidden field must never
    return a shielded record. The records holding the update's NHS number or pupil
    number (`holders`, plausible) are shown whatever their place, last if below the
    five."""
    could = {c.child_id for c in plausible}
    shown = [c for c in scored if not (c.shielded or c.severed) or c.child_id in could]
    best = shown[:5]
    missing = [c for c in shown[5:] if c.child_id in holders]
    return tuple(best[:5 - len(missing)] + missing if missing else best)


def _protected_beside(child: Record, target: str, facts: Facts, matcher: Matcher,
                      thresholds: Thresholds, form: Prepared | None,
                      generous: bool = False) -> str | None:
    """For an update tied to `target` (by its source link or NHS number): the review
    reason when another shielded or severed child could be its child, else None. Only
    those candidates are scored (and the target, if there are any: does it explain
    the update so much better than each that none is? `_tie_explains`; not where
    rule 6 sends it to a person anyway)."""
    others = _beside(child, target, facts, matcher, thresholds, form, generous)
    if not others:
        return None
    if _place_guard(child, target, facts) is None and _tie_explains(
            child, target, others, facts, matcher, thresholds, form):
        return None
    # Severed first: her record beside the birth family's update is shown to no one
    # but her authority (an independent probe read her adoptive name off a
    # `shielded_candidate` item).
    return "severed_identity" if any(c.severed for c in others) else "shielded_candidate"


def _beside(child: Record, target: str, facts: Facts, matcher: Matcher,
            thresholds: Thresholds, form: Prepared | None, generous: bool) -> list[Scored]:
    """The shielded and severed children but `target` that could be the update's: at
    the identity floor, or (`generous`: beside a source link, which a link that set
    one aside may have made, unseen by a person) passing `could_be_same_child`."""
    records = {c.child_id: c.record for c in facts.candidates if c.shielded or c.severed}
    return [
        c for c in _score_all(child, facts, matcher, True, form)
        if c.child_id != target and (
            c.identity_probability >= thresholds.shielded_plausible
            or (generous and could_be_same_child(child, records[c.child_id])))
    ]


def _tie_explains(child: Record, target: str, others: list[Scored], facts: Facts,
                  matcher: Matcher, thresholds: Thresholds, form: Prepared | None) -> bool:
    """Whether the open record an update is tied to explains it so much better than
    each shielded or severed child beside it (`others`) that none is a candidate
    (`_explained_elsewhere`)."""
    tied = next((c for c in facts.candidates if c.child_id == target), None)
    if tied is None or tied.shielded or tied.severed:
        return False
    s = tied.scored_by(form if form is not None else matcher.prepare(child), matcher)
    best = Scored(target, s.probability, s.identity_probability, False, False, s)
    if _explaining([best], thresholds) is None:
        return False
    guarded = {c.child_id: c for c in facts.candidates if c.shielded or c.severed}
    return all(_explained_elsewhere(child, best, c, guarded[c.child_id], facts, thresholds,
                                    matcher) for c in others)


def _address_guard(child: Record, target: str | None, facts: Facts) -> bool:
    """True when writing this update could put a shielded child's address elsewhere:
    an address near hers (hub.places.near: her address however written, her
    postcode, a former address of hers) into any record but one shielded by the same
    authority as every other child there (siblings shielded together in a refuge:
    the address stays behind that one authority's shield). A record whose own
    address the update writes again, one no shielded child lives at now, stays
    there: a neighbour is not moving in, nor a brother at the home she left."""
    close = facts.protected_nearby_of | facts.protected_address_of
    if not close or not child.get("address"):
        return False
    others = close - ({target} if target else set())
    if not others:
        return False
    own = next((c for c in facts.candidates if c.child_id == target), None)
    if own is not None and not (facts.protected_address_of - {own.child_id}) \
            and not _unread(own) and same_dwelling(own.record.get("address"),
                                                   child.get("address")):
        return False
    if own is None or not own.shielded or own.authority is None:
        return True
    return any(facts.holder_authority.get(h) != own.authority for h in others)


def _unread(candidate: CandidateLike) -> bool:
    """A candidate whose record was not read (hub.batch.StoredRecord): the guard
    does not read it (that would raise), and takes no exemption from it."""
    return bool(getattr(candidate.record, "unread", False))


def _contact_guard(target: str | None, facts: Facts) -> bool:
    """True when writing this update would put a phone number or email address of a
    shielded child's carers or services into a record that does not hold it
    already, but one shielded by the same authority as every other child holding
    it (a refuge's new number reaches her as surely as its address; a brother's
    record had the old one all along)."""
    if not facts.protected_contact_of:
        return False
    own = next((c for c in facts.candidates if c.child_id == target), None)
    held = contact_keys(own.record) if own is not None and not _unread(own) else set()
    for contact, holders in facts.protected_contact_of.items():
        others = holders - ({target} if target else set())
        if not others or contact in held:
            continue
        if own is None or not own.shielded or own.authority is None or any(
                facts.holder_authority.get(h) != own.authority for h in others):
            return True
    return False


def _place_guard(child: Record, target: str | None, facts: Facts) -> str | None:
    """Rule 6's review reason for writing this update into `target` (None: a new
    record), or None."""
    if _address_guard(child, target, facts):
        return "shielded_address"
    if _contact_guard(target, facts):
        return "shielded_contact"
    return None


def decide(
    child: Record, version: int, facts: Facts, thresholds: Thresholds,
    matcher: Matcher = DEFAULT_MATCHER, form: Prepared | None = None,
) -> Decision:
    """The decision for one valid update's `child` (canonical dict); `form`, its
    normal forms when the caller has them (else the matcher prepares them)."""
    if facts.link is not None and version <= facts.link.last_version:
        return Decision(NOOP, "stale_version", facts.link.child_id)
    if facts.waiting is not None and version <= facts.waiting:
        # The same change (or an older one) of a source record is waiting for a
        # person already: its decision places this version too, so it is no second item.
        return Decision(NOOP, "waiting_version")
    if facts.link is not None:
        link = facts.link
        if link.severed:
            own = _only(link.child_id, child, facts, matcher, form)
            return Decision(REVIEW, "severed_identity", None, own)
        # A source may reuse a record id for another child: the link ties the update to
        # its record only while nothing says it is now someone else (another record's
        # NHS number, a shielded child it could be), or her details go into that record.
        nhs = child.get("nhs_number")
        review: str | None = ("conflicting_identity" if nhs and any(
            c.nhs_and_dob[0] == nhs and c.child_id != link.child_id for c in facts.candidates)
            else _protected_beside(child, link.child_id, facts, matcher, thresholds, form,
                                   generous=True))
        if review is not None:
            if facts.partial:  # a person sees the best of all the candidates
                return Decision(MORE, review)
            return Decision(REVIEW, review, None, _top(child, facts, matcher, thresholds, form),
                            matcher.model.version)
        guarded = _place_guard(child, link.child_id, facts)
        if guarded is not None:
            return Decision(REVIEW, guarded, None, _shielded_holders(facts, child))
        return Decision(LINK, "source_link", link.child_id)

    if facts.invalidated_for is not None:
        severed = _only(facts.invalidated_for, child, facts, matcher, form)
        return Decision(REVIEW, "severed_identity", None, severed)

    nhs = child.get("nhs_number")
    dob = str(child.get("date_of_birth"))
    same_nhs: list[CandidateLike] = []
    if nhs:
        same_nhs = [c for c in facts.candidates if c.nhs_and_dob[0] == nhs]
        dob_s = dob.replace("-", "")
        tied = [c for c in same_nhs if c.nhs_and_dob[1] == dob_s]
        if len(tied) == 1 and len(same_nhs) == 1:
            # Tied by NHS number: only shielded or severed candidates are scored (is
            # another one plausible?); the rest only if a person is to decide.
            target = tied[0]
            model: str | None = matcher.model.version
            if target.severed:
                review = "severed_identity"
            else:
                review = _protected_beside(child, target.child_id, facts, matcher,
                                           thresholds, form)
                if review is None:
                    review = _place_guard(child, target.child_id, facts)
            if review is None:
                return Decision(LINK, "nhs_number", target.child_id, (), model)
            if facts.partial:  # a person sees the best of all the candidates
                return Decision(MORE, review)
            return Decision(REVIEW, review, None, _top(child, facts, matcher, thresholds, form),
                            model)

    if facts.partial:  # every rule below reads every candidate
        return Decision(MORE, "demographic")
    scored = _score_all(child, facts, matcher, form=form)
    model = scored[0].explanation.model_version if scored and scored[0].explanation else None
    plausible = _plausible(child, scored, facts, thresholds)
    holders = _holders(child, facts)
    top = _shown(scored, plausible, holders)
    if len(same_nhs) > 1:
        return Decision(REVIEW, "conflicting_identity", None, top, model)
    # One record with this NHS number but another date of birth (a typo, a day/month
    # swap, or the number a sibling's), or with this pupil number: not a tie, so the
    # probabilistic rules below decide, but the update is linked to that record or goes
    # to a person: linked to another record, or created, it would leave two children
    # holding one identifier. (She is plausible, shielded or severed: `_plausible`.)

    if any(c.shielded or c.severed for c in plausible):
        linked = _set_aside(child, scored, plausible, facts, thresholds, matcher, model)
        if linked is not None and (not holders or linked.child_id in holders):
            return linked
    if any(c.severed for c in plausible):  # (first: see _protected_beside)
        return Decision(REVIEW, "severed_identity", None, top, model)
    if any(c.shielded for c in plausible):
        return Decision(REVIEW, "shielded_candidate", None, top, model)

    if scored and scored[0].probability >= thresholds.review:
        best = scored[0]
        runner_up = scored[1].probability if len(scored) > 1 else 0.0
        close = best.probability - runner_up < thresholds.ambiguous_margin
        if runner_up >= thresholds.review and (close or _twins_nameless(child, scored[1])):
            return Decision(REVIEW, "ambiguous_match", None, top, model)
        if best.probability < thresholds.link or _twin(best, child, facts):
            return Decision(REVIEW, "possible_match", None, top, model)
        guarded = _place_guard(child, best.child_id, facts)
        if guarded is not None:
            return Decision(REVIEW, guarded, None, top, model)
        if holders and best.child_id not in holders:
            return Decision(REVIEW, "conflicting_identity", None, top, model)
        if nhs and _holds_another_number(best.child_id, nhs, facts):
            # Two valid NHS numbers are two people (a number is issued once, and its
            # check digit catches a slip): linked, the update would replace the
            # record's number with its own (found by an independent probe).
            return Decision(REVIEW, "conflicting_identity", None, top, model)
        return Decision(LINK, "demographic_match", best.child_id, top, model)

    guarded = _place_guard(child, None, facts)
    if guarded is not None:
        return Decision(REVIEW, guarded, None, top, model)
    if holders:
        return Decision(REVIEW, "conflicting_identity", None, top, model)
    return Decision(CREATE, "no_match", None, top, model)


def _holds_another_number(child_id: str, nhs: str, facts: Facts) -> bool:
    """Whether the candidate `child_id` holds an NHS number, and not `nhs`."""
    for c in facts.candidates:
        if c.child_id == child_id:
            held = c.nhs_and_dob[0]
            return bool(held) and held != nhs
    return False


def _plausible(child: Record, scored: list[Scored], facts: Facts,
               thresholds: Thresholds) -> list[Scored]:
    records = {c.child_id: c.record for c in facts.candidates if c.shielded or c.severed}
    holders = _holders(child, facts)
    return [
        c for c in scored
        if c.identity_probability >= thresholds.shielded_plausible
        or c.probability >= thresholds.review
        or c.child_id in holders
        or ((c.shielded or c.severed) and could_be_same_child(child, records[c.child_id]))
    ]


#: How much better (log10 of the odds) the open record an update would be linked to
#: must explain its names, date of birth and sex than a shielded or severed child, for
#: that child not to be plausible (`_explained_elsewhere`).
EXPLAINED_BY = 3.0


def _explaining(scored: list[Scored], thresholds: Thresholds) -> Scored | None:
    """The open candidate the update would be linked to on its own (the best, at the
    link threshold, neither shielded nor severed), if any."""
    best = scored[0] if scored else None
    if best is None or best.shielded or best.severed or best.probability < thresholds.link:
        return None
    return best


def _explained_elsewhere(child: Record, best: Scored, c: Scored, cand: CandidateLike,
                         facts: Facts, thresholds: Thresholds, matcher: Matcher) -> bool:
    """Whether `best`, an open record the update matches at the link threshold (or is
    tied to), explains it so much better than `c`, a shielded or severed child, that
    she is not a candidate:
    - by evidence she cannot share: the update is at the record's own postcode, or
      carries its NHS number (an update about her, renamed and mistyped at her
      refuge, can take a stranger's name and date of birth, not his address);
    - nothing says it is hers: no NHS number in it but his, not her unique pupil
      number, its date of birth nearer his than hers, its given name his (or, as
      his nickname or middle name, nearer his than hers), its family name not hers
      as written unless his;
    - the record is someone else: its own NHS number, and hers another (an open
      duplicate of her made before she was shielded has hers, or none; one made
      with another number is not told apart: README, Known gaps), not born the
      day she was nor near it under her surname (a twin, a sibling), nor named
      with her names (her former surname included), and the update near no
      shielded child's places;
    - its names, date of birth and sex explain the update 10^EXPLAINED_BY times
      better (odds) than hers, and it is unlike her (their identity score below the
      floor).
    Born the day she was, the date cannot tell them apart, nor his likeness to her;
    at his own door with nothing new it is his all the same
    (`_born_her_day_at_his_door`).

    Why: at a national scale a common given name and a date of birth a digit away
    make a shielded child a candidate of many updates about other children (README,
    "Shielded candidates at scale")."""
    ex = best.explanation
    if ex is None or not (ex.level("postcode") == "exact" or ex.level("nhs_number") == "agree"):
        return False
    # An NHS number not his (hers, crossed by a clerk registering a household's
    # children), or a date of birth nearer hers than his (her true date at relatives'
    # where a cousin of her name lives): it may be hers.
    if ex.level("nhs_number") == "disagree":
        return False
    hers_ex = c.explanation
    # Her unique pupil number in it (her school's, the area she lives in): hers.
    if hers_ex is None or hers_ex.level("upn") == "agree":
        return False
    other = next((x for x in facts.candidates if x.child_id == best.child_id), None)
    if other is None:
        return False
    at_his_door = _born_her_day_at_his_door(child, other, cand)
    if (_DOB_RANK.get(hers_ex.level("date_of_birth") or "", 0) >= _DOB_RANK.get(
            ex.level("date_of_birth") or "", 0) and not at_his_door):
        return False
    # His given name known and agreeing, and unless it is his exactly, agreeing better
    # than with hers: a record without one (a birth notified by family name) explains
    # nothing, nor one whose middle name or nickname is her given name.
    his_given = _GIVEN_RANK.get(ex.level("given_name") or "", 0)
    her_level = hers_ex.level("given_name") or MISSING
    her_given = _GIVEN_RANK.get(her_level, 0 if her_level in (MISSING, DISAGREE) else 2)
    if not his_given or (his_given < _GIVEN_RANK["exact"] and her_given >= his_given):
        return False
    # Her family name as written, his only near it (Brown, Browne: a clerk's trace
    # taking a namesake spelt another way).
    if hers_ex.level("family_name") == EXACT and ex.level("family_name") != EXACT:
        return False
    his, hers = other.nhs_and_dob[0], cand.nhs_and_dob[0]
    if not his or not hers or his == hers:
        return False
    # Her twin, or a sibling born the same day or near it under her surname (a clerk
    # who took his record for her: his number, name and date, her sex and refuge),
    # unless born her day but at his own door (below).
    his_dob, her_dob = other.record.get("date_of_birth"), cand.record.get("date_of_birth")
    if (his_dob == her_dob and not at_his_door) or (_dob_close(str(his_dob), str(her_dob)) and (
            _tokens(other.record.get("family_name")) & _name_tokens(cand.record))):
        return False
    # His given and family names both among hers (a former surname included): he may
    # be her under the name she was born with.
    if _full_name_agrees(other.record, cand.record):
        return False
    # At or near a place a shielded child holds: a refuge's other families.
    if facts.protected_near:
        return False
    if _log_odds(best.identity_probability) - _log_odds(c.identity_probability) < EXPLAINED_BY:
        return False
    return at_his_door or cand.scored_by(other.normal_form, matcher).identity_probability < (
        thresholds.shielded_plausible)


def _born_her_day_at_his_door(child: Record, other: CandidateLike, cand: CandidateLike) -> bool:
    """An open record born the day she was (a namesake, or a girl with her middle or a
    near name) that the update matches at his own dwelling (a postcode and the lines
    as his record writes them), under his surname, none of her names nor her carers':
    the date cannot tell them apart, nor can his record's likeness to hers, but the
    place can. An update about her could take his name and date (a clerk's trace) but
    would carry her refuge, not his door; and merged into his record it must change
    nothing (not a protected field, nor a name, a pupil number or an NHS number), so
    that it tells no one of anywhere or anyone new, whoever it is about. Never for a
    severed identity: an update that would match one always goes to a person."""
    if cand.severed or _unread(other) or _unread(cand) or other.record.get(
            "date_of_birth") != cand.record.get("date_of_birth"):
        return False
    address = child.get("address")
    if not key_postcode(address) or not same_dwelling(other.record.get("address"), address):
        return False
    his_family = name_key(other.record.get("family_name"))
    if not his_family or his_family != name_key(child.get("family_name")):
        return False
    if _name_keys(other.record.get("family_name")) & _her_names_and_her_carers(cand.record):
        return False
    _, changed = merge(dict(other.record), child)
    return not changed


def _name_keys(name: Any) -> set[str]:
    """A name as a name key and its parts (Lê as "le", 王 kept: `_tokens` keeps only
    Latin letters)."""
    if not isinstance(name, str):
        return set()
    return ({name_key(name)} | set(name_parts(name))) - {""}


def _her_names_and_her_carers(record: Mapping[str, Any]) -> set[str]:
    names = [record.get("given_name"), record.get("middle_names"), record.get("family_name"),
             *(record.get("former_family_names") or [])]
    names += [c.get("name") for c in record.get("carers") or () if isinstance(c, Mapping)]
    return {k for n in names for k in _name_keys(n)}


#: Given-name levels (hub.match.compare.compare_given) that say the names agree,
#: closest high (for hers, any other but disagreeing counts as a nickname would).
_GIVEN_RANK = {"exact": 3, "nickname": 2, "middle": 2}

def _twins_nameless(child: Record, runner_up: Scored) -> bool:
    """An update with no given name, and a runner-up born its day under its family
    name: twins, which nothing in it tells apart, however their records write the
    address (an independent probe: a school's update with no given name went into
    one twin's record for the other)."""
    ex = runner_up.explanation
    return (not child.get("given_name") and ex is not None
            and ex.level("date_of_birth") == EXACT and ex.level("family_name") in (EXACT, "part"))


def _twin(best: Scored, child: Record, facts: Facts) -> bool:
    """The update says nothing that tells the record's child from her twin: born the
    same day, at the same address, under the same family name, with a given name only
    like the record's (Amelia and Emilia, Lewis and Louis, a letter out) or no given
    name on one side; and it brings an NHS number the record lacks (else it would tie
    them, or name two people), or another child born that day there waits in review
    (`birth_waiting`, migration 0029). Linked, her twin's number goes into the
    record, and every update carrying it after follows (an independent probe loaded
    such twins one after the other: 16 of 16 pairs became one record); or her update
    goes into her sister's record while her own first one waits (the same probe)."""
    ex = best.explanation
    if ex is None or not (child.get("nhs_number") or facts.birth_waiting):
        return False
    if ex.level("household") == "twin_pattern":
        return True
    if ex.level("date_of_birth") != EXACT or EXACT not in (ex.level("postcode"),
                                                           ex.level("address_line")):
        return False
    family, given = ex.level("family_name"), ex.level("given_name")
    if given == MISSING:
        return family in (EXACT, "part")
    # Her family name a letter out (Kur for Kaur): the twin pattern all the same.
    return family in ("jw94", "edit1") and given not in (EXACT, "swapped", DISAGREE)


#: Date-of-birth agreement levels (hub.match.compare.compare_dob), closest first high.
_DOB_RANK = {"exact": 5, "swapped": 4, "one_digit": 3, "jan1": 2, "year_month": 1}


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-15), 1 - 1e-15)
    return math.log10(p / (1 - p))


def _set_aside(child: Record, scored: list[Scored], plausible: list[Scored], facts: Facts,
               thresholds: Thresholds, matcher: Matcher, model: str | None) -> Decision | None:
    """The link an update gets when the open record it matches best explains it so
    much better than every plausible shielded or severed child that none is a
    candidate (`_explained_elsewhere`), and nothing else would send it to a person
    (too close to call, rule 6); else None, and the update goes to a person as
    before, who sees her."""
    best = _explaining(scored, thresholds)
    if best is None:
        return None
    guarded = {c.child_id: c for c in facts.candidates if c.shielded or c.severed}
    if not all(_explained_elsewhere(child, best, c, guarded[c.child_id], facts, thresholds,
                                    matcher) for c in plausible if c.shielded or c.severed):
        return None
    runner_up = scored[1].probability if len(scored) > 1 else 0.0
    if runner_up >= thresholds.review and best.probability - runner_up < (
            thresholds.ambiguous_margin):
        return None
    if _place_guard(child, best.child_id, facts) is not None or _twin(best, child, facts):
        return None
    rest = [c for c in plausible if not (c.shielded or c.severed)]
    return Decision(LINK, "demographic_match", best.child_id, _shown(scored, rest), model)


def plausible_shielded(child: Record, facts: Facts, thresholds: Thresholds,
                       matcher: Matcher = DEFAULT_MATCHER,
                       form: Prepared | None = None) -> list[str]:
    """The shielded candidates that could be this update's child (rule 4), best
    first: an operator placing a parked update is held to them as they are now."""
    scored = _score_all(child, facts, matcher, form=form)
    return [c.child_id for c in _plausible(child, scored, facts, thresholds) if c.shielded]


def linkable(child: Record, facts: Facts, thresholds: Thresholds,
             matcher: Matcher = DEFAULT_MATCHER,
             form: Prepared | None = None) -> list[tuple[str, float]]:
    """The open records this update would be linked to by its match probability
    alone (at the link threshold, neither shielded nor severed), best first, with
    their probabilities: an operator creating a record for a parked update is held
    to those written since it was parked."""
    scored = _score_all(child, facts, matcher, form=form)
    return sorted(((c.child_id, c.probability) for c in scored
                   if c.probability >= thresholds.link and not (c.shielded or c.severed)),
                  key=lambda t: (-t[1], t[0]))


def _tokens(name: Any) -> set[str]:
    return {t for t in re.split(r"[^a-z]+", str(name).casefold()) if len(t) > 1} if name else set()


def _name_tokens(record: Mapping[str, Any]) -> set[str]:
    names = [record.get("given_name"), record.get("middle_names"), record.get("family_name"),
             *(record.get("former_family_names") or [])]
    return {t for n in names for t in _tokens(n)}


def _full_name_agrees(update: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    theirs = _name_tokens(record)
    return bool(_tokens(update.get("given_name")) & theirs) and bool(
        _tokens(update.get("family_name")) & theirs)


def _dob_close(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) != 10 or len(b) != 10:
        return False
    if a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
        return True  # day and month swapped
    if sum(x != y for x, y in zip(a, b, strict=True)) == 1:
        return True
    # A day or a month either side, or the day's or the month's digits transposed.
    return b.replace("-", "") in date_slips(a.replace("-", ""))


def could_be_same_child(update: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """A deliberately generous test, used only for shielded and severed candidates:
    a close date of birth (`_dob_close`: the same, day and month swapped, one digit,
    or a clerk's slip: a day or month either side, two digits transposed) and any
    name in common (given, middle, family or former,
    in any position), or both names in common and the birth year alone (a date of
    birth wrong in day and month), or her date of birth exactly and a given name one
    typo from hers (a new surname and "Olvia" for Olivia scores below the identity
    floor), or 1 January (a day and month not known) of her birth year or a year
    either side, or her date 1 January and the update's a day of such a year, and a
    given or middle name in common. The sexes must not differ, but with her date and
    her given name (a sex miscoded). Scoring can miss a child whose names changed and
    were then mistyped or swapped, or whose date is wrong twice over; for a shielded
    child a miss is a duplicate, so a person looks."""
    mine, theirs = str(update.get("date_of_birth")), str(record.get("date_of_birth"))
    # A day and month the source did not know, recorded as 1 January, its year perhaps
    # a year out (or hers not known when she was indexed: a child whose age was
    # assessed).
    unknown_day = _unknown_day(mine, theirs) or _unknown_day(theirs, mine)
    if not _dob_close(mine, theirs) and not unknown_day and not (
        mine[:4] == theirs[:4] and _full_name_agrees(update, record)
    ):
        return False
    sexes = {update.get("sex"), record.get("sex")} - {None, "unknown"}
    if len(sexes) > 1 and not (mine == theirs and _same_given(update, record)):
        return False  # but her date and given name, her sex miscoded
    if unknown_day and not _dob_close(mine, theirs):
        return bool(_given_tokens(update) & _given_tokens(record)) or _full_name_agrees(
            update, record)
    return bool(_name_tokens(update) & _name_tokens(record)) or (
        mine == theirs and _one_typo_apart(update.get("given_name"), record.get("given_name")))


def _unknown_day(a: str, b: str) -> bool:
    """Whether date `a` is 1 January of `b`'s year or a year either side (and not `b`)."""
    if a == b or len(a) != 10 or a[4:] != "-01-01" or not (a[:4].isdigit() and b[:4].isdigit()):
        return False
    return abs(int(a[:4]) - int(b[:4])) <= 1


def _given_tokens(record: Mapping[str, Any]) -> set[str]:
    return _tokens(record.get("given_name")) | _tokens(record.get("middle_names"))


def _same_given(update: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    mine = name_key(update.get("given_name"))
    return bool(mine) and mine == name_key(record.get("given_name"))


def _one_typo_apart(a: Any, b: Any) -> bool:
    """Two given names one typo apart (a letter wrong, missing, added, or two swapped:
    Olvia, Oliwia, Olivai for Olivia). With her date of birth and a new surname that
    is all an update about her may share with her record."""
    ka, kb = name_key(a), name_key(b)
    return bool(ka and kb) and OSA.distance(ka, kb, score_cutoff=1) <= 1


def _only(child_id: str, child: Record, facts: Facts, matcher: Matcher,
          form: Prepared | None) -> tuple[Scored, ...]:
    for cand in facts.candidates:
        if cand.child_id == child_id:
            s = cand.scored_by(form if form is not None else matcher.prepare(child), matcher)
            return (Scored(child_id, s.probability, s.identity_probability,
                           cand.shielded, cand.severed, s),)
    return (Scored(child_id, 0.0, 0.0, False, True),)


def _shielded_holders(facts: Facts, child: Record) -> tuple[Scored, ...]:
    return tuple(
        Scored(cid, 0.0, 0.0, True, False) for cid in sorted(facts.protected_near)
    )
