"""Crisis flagging (kept, carried into pair metadata) and harmful-advice rejection.

Both are sentence-level lexicon rules, so every decision points at the sentence that caused it. Crisis content is
*flagged*, not rejected: supportive, educational talk about suicide or abuse is exactly what the experts must learn
to handle. Harmful advice (encouraging self-harm, stopping medication without a doctor, contempt for the client) is
rejected. A negation or a doctor in the same sentence ("never stop taking your medication on your own; talk with
your doctor") turns the medication rule off for that sentence; reported speech ("the critic says, you're disgusting") turns the
contempt and self-harm rules off for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from pixel_pipeline.curation.filters import RULE_COLUMNS
from pixel_pipeline.curation.text import sentences

CRISIS_CATEGORIES: dict[str, str] = {
    "suicide": r"\bsuicid\w*|\bkill(ing)? (myself|yourself|themselves|himself|herself)\b|\bend(ing)? (my|your|their|his|her) "
    r"(own )?life\b|\btake (my|your|their|his|her) own life\b|\b(want(ed|s)?|wish(es|ed)?) to die\b|\bbetter off dead\b"
    r"|\b(life|it) (isn'?t|is not|wasn'?t|was not) worth living\b|\bwish(es|ed)? (that )?(i|he|she|they|you) (could|would|were|was) "
    r"(die|dead|not (be )?(here|alive))\b|\b988\b|\bcrisis (line|lifeline)\b",
    "self_harm": r"\bself[- ]harm\w*|\bself[- ]injur\w*|\bcutting (myself|yourself|herself|himself|themselves)\b"
    r"|\bcut(s|ting)? (on )?(my|your|her|his|their) (arms?|wrists?|legs?|thighs?)\b|\bhurt(ing)? (myself|yourself|themselves)\b"
    r"|\bburn(ing)? (myself|yourself)\b|\b(self-inflicted|cutting) (cuts|scars|wounds)\b|\bcutting\b[^.!?]{0,40}\bscars?\b",
    "child_abuse": r"\bchild(hood)? (sexual |physical |emotional )?(abuse|maltreatment)\b|\babused (as a child|when (i|you|she|he) "
    r"(was|were) (young|little|a kid))|\bmolest\w*|\bincest\b|\bchild neglect\b|\badverse childhood experiences?\b",
    "sexual_violence": r"\brap(e|ed|ist)\b|\bsexual(ly)? (assault\w*|abuse\w*|violence|violated)\b|\bsexual harassment\b",
    # an assault as someone's experience or the topic ("PTSD from an assault", "was assaulted"), not a passing
    # example in a list of trauma causes ("there was a car accident, there was an assault")
    "violence": r"\b(from|after|since|during|survived|survivors? of) (an |the |a )?(physical |sexual )?assault\b"
    r"|\b(was|were|been|got|being) (physically |sexually )?assaulted\b|\bdomestic (violence|abuse)\b"
    r"|\bintimate partner violence\b|\bphysical violence\b",
}
_CRISIS_RES = {k: re.compile(v, re.IGNORECASE) for k, v in CRISIS_CATEGORIES.items()}

NEGATION = r"\b(never|don'?t|do not|doesn'?t|does not|not|no|shouldn'?t|should not|avoid|before you)\b"
DOCTOR = r"\b(doctor|physician|psychiatrist|prescriber|gp|pharmacist|medical (team|provider)|nurse practitioner)\b"
# Reported speech is not advice: "the inner critic says, you're disgusting", "clients tell me 'I feel alive when...'".
REPORTED = (r"\b(says?|said|saying|tells? (you|me|them|us|him|her)|told|called|labell?ed|voice|critic|thoughts? like"
            r"|(she|he|they|clients?|people) (say|said|tell|told|describe|write|wrote))\b|[\"“]")

_MEDICATION = r"(medication|meds|pills|antidepressants?|lithium|prescriptions?|ssris?|antipsychotics?|mood stabili[sz]ers?)"
HARMFUL_CATEGORIES: dict[str, str] = {
    "encourages_self_harm": r"\b(you should|keep|go ahead and|it'?s (fine|okay|ok) to|nothing wrong with) "
    r"[^.!?]{0,30}\b(cut(ting)?|hurt(ing)?|harm(ing)?|burn(ing)?|starv(e|ing)|kill(ing)?) (yourself|your body|your arms?)"
    r"|\bif cutting (makes|helps) you[^.!?]{0,40}\b(keep|do it|should)\b"
    r"|\b(just|go) (kill|hurt) yourself\b|\byou('d| would) be better off dead\b"
    r"|\b(cutting|self[- ]harm\w*|hurting (myself|yourself)|(my|your|the) scars)\b[^.!?]{0,80}\b(sacred|beautiful|like art|it'?s art"
    r"|proud|got me through|feel alive)\b"
    r"|\b(feel alive|sacred|beautiful|proud of)\b[^.!?]{0,60}\b(hurting (myself|yourself)|cutting|scars)\b"
    r"|\byou don'?t have to stop\b[^.!?]{0,40}\b(because|just because)\b",
    # directive only: "stop taking your meds", "just quit the pills"; not "the reason people stop their medication"
    "stop_medication": rf"(^|[,;:]\s*|\b(just|simply|you should|you can|you could|you need to|go ahead and|i'?d|i would)\s+)"
    rf"(stop|quit|ditch|drop|throw (away|out)|flush)\b[^.!?]{{0,25}}\b{_MEDICATION}\b"
    rf"|\byou (do not|don'?t) need (those|your|the|any|these) {_MEDICATION}|\bjust (stop|quit) taking\b",
    "anti_prescriber": r"\byou (do not|don'?t) need (permission from |to ask |to tell )?(a|your|the) (doctor|psychiatrist|prescriber)\b"
    r"|\bdon'?t tell your (doctor|psychiatrist|prescriber)\b|\b(doctors?|psychiatrists?) (just )?want to keep you (on|dependent|sick)\b",
    "contempt": r"\b(you('re| are)|people like (that|them|you) are|these (people|folks|clients) are) (just )?"
    r"(pathetic|worthless|disgusting|a loser|losers|weak|lazy|stupid|idiots?|an idiot|hopeless)\b"
    r"|\bnobody cares about (you|your)\b|\b(stop|quit) (whining|complaining|moaning|crying|being so dramatic)\b|\bget over it\b"
    r"|\bman up\b|\bit'?s your own fault\b|\bstop coddling\b",
}
_HARMFUL_RES = {k: re.compile(v, re.IGNORECASE) for k, v in HARMFUL_CATEGORIES.items()}
# whole-text pre-check, a superset of the per-sentence patterns (a sentence start becomes any word boundary):
# most texts skip the per-sentence pass
_HARMFUL_ANY = re.compile("|".join(f"(?:{v})" for v in HARMFUL_CATEGORIES.values()).replace("(^|", r"(\b|"),
                          re.IGNORECASE)
_NEGATION_RE = re.compile(NEGATION, re.IGNORECASE)
_DOCTOR_RE = re.compile(DOCTOR, re.IGNORECASE)
_REPORTED_RE = re.compile(REPORTED, re.IGNORECASE)


def crisis_flags(text: str) -> list[str]:
    """Sorted crisis categories mentioned in the text (empty when none)."""
    return sorted(k for k, rx in _CRISIS_RES.items() if rx.search(text or ""))


def harmful_hits(text: str) -> list[tuple[str, str]]:
    """(category, sentence) for each sentence giving harmful advice."""
    hits = []
    if not _HARMFUL_ANY.search(text or ""):
        return hits
    for sent in sentences(text or ""):
        for kind, rx in _HARMFUL_RES.items():
            m = rx.search(sent)
            if not m:
                continue
            if kind == "stop_medication":
                before = sent[: m.start()]
                if _DOCTOR_RE.search(sent) or _NEGATION_RE.search(before[-40:]):
                    continue
            if kind in ("contempt", "encourages_self_harm"):
                before = sent[max(0, m.start() - 40): m.start()]
                if _REPORTED_RE.search(before):
                    continue  # reported speech: the inner critic's words, a client's quote
                if kind == "contempt" and _NEGATION_RE.search(before[-25:]):
                    continue  # "you are not weak", "don't just get over it"
            hits.append((kind, sent))
    return hits


def harmful(texts: Sequence[str]) -> pd.DataFrame:
    """Rule frame: score = number of harmful sentences; fires at one."""
    rows = []
    for text in texts:
        hits = harmful_hits(text)
        kinds = sorted({k for k, _ in hits})
        reason = f"harmful: {', '.join(kinds)}: {hits[0][1][:80]!r}" if hits else None
        rows.append({"score": float(len(hits)), "fired": bool(hits), "reason": reason,
                     "measures": {"kinds": kinds, "sentences": [s[:160] for _, s in hits[:3]]}})
    return pd.DataFrame(rows, columns=RULE_COLUMNS)
