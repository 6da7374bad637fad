"""Crisis flagging (kept, carried into pair metadata) and harmful-advice rejection.

Both are sentence-level lexicon rules, so every decision points at the sentence that caused it. Crisis content is
*flagged*, not rejected: supportive, educational talk about suicide or abuse is exactly what the experts must learn
to handle. Harmful advice (encouraging self-harm, stopping medication without a doctor, contempt for the client) is
rejected. A negation or a doctor in the same sentence ("never stop taking your medication on your own; talk with
your doctor") turns the medication rule off for that sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from pixel_pipeline.curation.filters import RULE_COLUMNS
from pixel_pipeline.curation.text import sentences

CRISIS_CATEGORIES: dict[str, str] = {
    "suicide": r"\bsuicid\w*|\bkill(ing)? (myself|yourself|themselves|himself|herself)\b|\bend(ing)? (my|your|their|his|her) "
    r"(own )?life\b|\btake (my|your|their) own life\b|\bwant(ed)? to die\b|\bbetter off dead\b",
    "self_harm": r"\bself[- ]harm\w*|\bself[- ]injur\w*|\bcutting (myself|yourself|herself|himself)\b|\bcut(s|ting)? "
    r"(my|your|her|his) (arms?|wrists?|legs?)\b|\bhurt(ing)? (myself|yourself)\b|\bburn(ing)? (myself|yourself)\b",
    "child_abuse": r"\bchild(hood)? (sexual )?abuse\b|\babused (as a child|when (i|you|she|he) (was|were) (young|little|a kid))"
    r"|\bmolest\w*|\bincest\b|\bchild neglect\b",
    "sexual_violence": r"\brap(e|ed|ist)\b|\bsexual(ly)? (assault\w*|abuse\w*|violence|violated)\b|\bsexual harassment\b",
}
_CRISIS_RES = {k: re.compile(v, re.IGNORECASE) for k, v in CRISIS_CATEGORIES.items()}

NEGATION = r"\b(never|don'?t|do not|doesn'?t|does not|not|no|shouldn'?t|should not|avoid|before you)\b"
DOCTOR = r"\b(doctor|physician|psychiatrist|prescriber|gp|pharmacist|medical (team|provider)|nurse practitioner)\b"

HARMFUL_CATEGORIES: dict[str, str] = {
    "encourages_self_harm": r"\b(you should|keep|go ahead and|it'?s (fine|okay|ok) to|nothing wrong with) "
    r"[^.!?]{0,30}\b(cut(ting)?|hurt(ing)?|harm(ing)?|burn(ing)?|starv(e|ing)|kill(ing)?) (yourself|your body|your arms?)"
    r"|\bif cutting (makes|helps) you[^.!?]{0,40}\b(keep|do it|should)\b"
    r"|\b(just|go) (kill|hurt) yourself\b|\byou('d| would) be better off dead\b",
    "stop_medication": r"\b(stop|quit|ditch|drop|throw (away|out))\b[^.!?]{0,25}\b(medication|meds|pills|antidepressants?|"
    r"lithium|prescriptions?|ssris?)\b|\byou (do not|don'?t) need (those|your|the|any) (pills|meds|medication)",
    "contempt": r"\byou('re| are) (pathetic|worthless|disgusting|a loser|weak|stupid|an idiot|hopeless)\b"
    r"|\bnobody cares about (you|your)\b|\bstop (whining|crying|being so dramatic)\b|\bget over it\b"
    r"|\bman up\b|\bit'?s your own fault\b",
}
_HARMFUL_RES = {k: re.compile(v, re.IGNORECASE) for k, v in HARMFUL_CATEGORIES.items()}
_NEGATION_RE = re.compile(NEGATION, re.IGNORECASE)
_DOCTOR_RE = re.compile(DOCTOR, re.IGNORECASE)


def crisis_flags(text: str) -> list[str]:
    """Sorted crisis categories mentioned in the text (empty when none)."""
    return sorted(k for k, rx in _CRISIS_RES.items() if rx.search(text or ""))


def harmful_hits(text: str) -> list[tuple[str, str]]:
    """(category, sentence) for each sentence giving harmful advice."""
    hits = []
    for sent in sentences(text or ""):
        for kind, rx in _HARMFUL_RES.items():
            m = rx.search(sent)
            if not m:
                continue
            if kind == "stop_medication":
                before = sent[: m.start()]
                if _DOCTOR_RE.search(sent) or _NEGATION_RE.search(before[-40:]):
                    continue
            if kind == "contempt" and _NEGATION_RE.search(sent[max(0, m.start() - 25): m.start()]):
                continue  # "you are not weak", "it's not your own fault"
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
