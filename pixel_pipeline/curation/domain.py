"""off_domain: is a text about mental health, psychology, relationships, trauma or personal growth?

Zero-shot with the sentence embedding model: a text's *domain similarity* is its best cosine to the domain
descriptions (and, when given, to the centroid of known-good segments); its *off-topic similarity* is its best cosine
to descriptions of what real transcript corpora also contain (news, sport, comedy, tech, finance, ...). The score is
the margin between the two, so the decision does not hinge on one absolute cosine value, which differs between
embedding models. The vectors come from core.embeddings.Embedder, which caches them by content hash.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pixel_pipeline.curation.filters import RULE_COLUMNS

DOMAIN_DESCRIPTIONS: tuple[str, ...] = (
    "A therapist talks about healing from trauma, PTSD, abuse and how the nervous system responds to fear.",
    "Understanding anxiety, depression, panic attacks, stress and mood from a psychology perspective.",
    "Advice on relationships, attachment, family conflict, boundaries, marriage, breakups and loneliness.",
    "Personal growth, self-esteem, self-compassion, shame, emotions, habits and finding meaning in life.",
    "A counselor validates a client's pain, grief, loss and feelings with empathy and support.",
    "Practical coping skills for mental health: breathing, sleep, mindfulness, journaling and therapy.",
    "Suicide prevention, self-harm, addiction recovery and getting help from a mental health professional.",
    "Parenting, childhood experiences, emotional regulation and how our past shapes our behaviour.",
)

OFF_TOPIC_DESCRIPTIONS: tuple[str, ...] = (
    "A news report about politics, elections, courts, crime, fraud, the military or government.",
    "Sports commentary about a football match, scores, players, teams and the league table.",
    "A comedian's stand-up jokes and banter in a comedy podcast.",
    "A celebrity interview about a new movie, music album, fame and the entertainment industry.",
    "Technology review of smartphones, software, computers, gadgets and programming.",
    "Finance and business: stock markets, investing, cryptocurrency, company earnings and the economy.",
    "A cooking recipe with ingredients, baking times and kitchen instructions.",
    "Video game walkthrough, gameplay, levels and streaming.",
    "Travel vlog about flights, hotels, sightseeing and tourist attractions.",
    "Religious sermon, prayer, scripture reading and worship.",
    "Car reviews, engines, driving and automotive repair.",
    "Weather forecast, natural science facts, space and astronomy.",
)


def domain_scores(
    vectors: np.ndarray,
    domain_vectors: np.ndarray,
    off_topic_vectors: np.ndarray,
    centroid_similarity: np.ndarray | None = None,
    min_domain_margin: float = 0.0,
    off_topic_labels: Sequence[str] = OFF_TOPIC_DESCRIPTIONS,
) -> pd.DataFrame:
    """Rule frame (filters.RULE_COLUMNS) for L2-normalised text vectors; fires when margin < min_domain_margin."""
    if len(vectors) == 0:
        return pd.DataFrame(columns=RULE_COLUMNS)
    dom = vectors @ domain_vectors.T
    domain_sim = dom.max(axis=1)
    centroid_sim = centroid_similarity
    if centroid_sim is not None:
        domain_sim = np.maximum(domain_sim, centroid_sim)
    off = vectors @ off_topic_vectors.T
    off_sim, off_idx = off.max(axis=1), off.argmax(axis=1)
    margin = domain_sim - off_sim
    rows = []
    for i in range(len(vectors)):
        fired = bool(margin[i] < min_domain_margin)
        measures = {
            "domain_similarity": round(float(domain_sim[i]), 4),
            "off_topic_similarity": round(float(off_sim[i]), 4),
            "nearest_off_topic": off_topic_labels[int(off_idx[i])][:60],
        }
        if centroid_sim is not None:
            measures["centroid_similarity"] = round(float(centroid_sim[i]), 4)
        reason = None
        if fired:
            reason = (f"off_domain: margin {margin[i]:.3f} (min {min_domain_margin}); closer to "
                      f"{measures['nearest_off_topic']!r} ({off_sim[i]:.2f}) than to the domain ({domain_sim[i]:.2f})")
        rows.append({"score": round(float(margin[i]), 4), "fired": fired, "reason": reason, "measures": measures})
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def centroid_similarity(vectors: np.ndarray, reference: np.ndarray, min_reference: int = 5) -> np.ndarray | None:
    """Cosine of each vector to the centroid of the reference rows (known-good segments), leaving each reference
    row out of its own centroid so that a text never vouches for itself. None with fewer than `min_reference` rows."""
    reference = np.asarray(reference, dtype=bool)
    n_ref = int(reference.sum())
    if n_ref < min_reference:
        return None
    total = vectors[reference].sum(axis=0)
    sims = np.empty(len(vectors), dtype=np.float64)
    others = ~reference
    norm = np.linalg.norm(total)
    sims[others] = vectors[others] @ total / max(norm, 1e-12)
    loo = total[None, :] - vectors[reference]  # leave-one-out centroids
    loo_norm = np.linalg.norm(loo, axis=1)
    sims[reference] = np.einsum("ij,ij->i", vectors[reference], loo) / np.maximum(loo_norm, 1e-12)
    return sims
