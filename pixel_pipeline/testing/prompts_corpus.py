"""A generated corpus of the real shape, for benchmarks and tests when no corpus is at hand.

Segments are educator monologues: sentences in one style's voice about one main topic (and sometimes a second),
drawn from per-topic vocabularies, with spoken filler. Many segments share a topic, so telling them apart is as hard
as in a real channel that returns to the same themes. Client questions are written per topic in the client's voice.
It is a stand-in for scale and mechanics, not for quality judgements: report figures on real data when you can.
"""

from __future__ import annotations

import random

import pandas as pd

from pixel_pipeline.core.ids import content_id
from pixel_pipeline.core.records import EXPERT_INDEX, STYLES

TOPICS: dict[str, list[str]] = {
    "complex trauma": ["nervous system", "hypervigilance", "survival strategy", "childhood home", "safety", "flashbacks", "grounding", "shame spiral"],
    "attachment": ["anxious attachment", "avoidant partner", "secure base", "reassurance", "abandonment fear", "caregiver", "intimacy", "pursuer distancer pattern"],
    "grief": ["losing a parent", "anniversary reactions", "mourning", "funeral", "memories", "complicated grief", "empty chair", "continuing bonds"],
    "panic": ["panic attacks", "racing heart", "adrenaline", "catastrophic thoughts", "box breathing", "avoidance", "exposure ladder", "safety behaviours"],
    "depression": ["low mood", "anhedonia", "behavioural activation", "sleep schedule", "morning routine", "hopelessness", "small wins", "energy"],
    "boundaries": ["saying no", "people pleasing", "guilt", "resentment", "family expectations", "boundary script", "enmeshment", "self-respect"],
    "narcissistic abuse": ["gaslighting", "love bombing", "trauma bond", "no contact", "self-doubt", "manipulation", "silent treatment", "reality testing"],
    "self-compassion": ["inner critic", "self-talk", "kindness", "perfectionism", "common humanity", "mindful pause", "self-forgiveness", "harsh standards"],
    "addiction recovery": ["cravings", "relapse", "sponsor", "triggers", "urge surfing", "sobriety", "support group", "withdrawal"],
    "parenting": ["toddler tantrums", "co-regulation", "repair after conflict", "screen time", "bedtime routine", "emotional coaching", "consistency", "teenagers"],
    "burnout": ["exhaustion", "workload", "cynicism", "recovery days", "overcommitment", "rest", "values at work", "manager conversations"],
    "social anxiety": ["fear of judgement", "small talk", "rumination after parties", "blushing", "safety behaviours", "spotlight effect", "eye contact", "group settings"],
    "anger": ["irritability", "rage", "time-out", "underlying hurt", "body cues", "yelling", "cooling down", "assertive words"],
    "loneliness": ["isolation", "friendship", "belonging", "reaching out", "weekend evenings", "community groups", "social media", "connection"],
    "sleep": ["insomnia", "racing thoughts at night", "sleep hygiene", "caffeine", "wind-down routine", "night waking", "bed restriction", "melatonin"],
    "body image": ["eating disorder", "mirror checking", "diet culture", "body neutrality", "comparison", "restriction", "binge cycle", "intuitive eating"],
    "ocd": ["intrusive thoughts", "compulsions", "checking rituals", "reassurance seeking", "exposure and response prevention", "uncertainty", "contamination fears", "mental reviewing"],
    "relationships": ["communication", "conflict cycles", "criticism", "contempt", "stonewalling", "repair attempts", "date nights", "love languages"],
    "self-worth": ["worthiness", "imposter syndrome", "achievement", "comparison", "validation", "core beliefs", "childhood messages", "self-acceptance"],
    "emotional regulation": ["window of tolerance", "big emotions", "naming feelings", "distress tolerance", "self-soothing", "emotional flooding", "vagus nerve", "pause"],
}

FRAMES: dict[str, list[str]] = {
    "therapeutic": [
        "When we look at {t} through a trauma lens, we see that it once protected you.",
        "Healing {t} is slow work, and {u} often shows up along the way.",
        "In recovery, {t} softens when the body learns it is safe again.",
        "Many of my clients carry {t} for years before they connect it to {u}.",
        "The wound underneath {t} usually has to do with {u}.",
        "Trauma work is not about erasing {t}; it is about making room for {u}.",
    ],
    "educational": [
        "Research on {t} shows that it is closely linked to {u}.",
        "Let me explain what {t} actually is, because people confuse it with {u}.",
        "The science here is simple: {t} affects {u} through the stress response.",
        "Psychologists describe {t} as a learned pattern, and {u} is one of its signs.",
        "To understand {t}, you need to understand {u} first.",
        "Studies from the last decade changed how we think about {t} and {u}.",
    ],
    "empathetic": [
        "If you are struggling with {t} right now, I want you to know you are not alone.",
        "It makes sense that {t} hurts, especially when {u} is part of your story.",
        "Your pain around {t} is real, and nobody gets to tell you to get over {u}.",
        "I hear so many of you say that {t} makes you feel invisible.",
        "Be gentle with yourself about {t}; {u} is heavy to carry.",
        "You deserve kindness even on the days when {t} and {u} take over.",
    ],
    "practical": [
        "Here is one concrete step for {t}: write down when it happens and what came before it.",
        "Try this for {t} this week: five minutes every morning focused on {u}.",
        "A simple tool for {t} is to set a timer and practise {u} until the timer ends.",
        "Make a plan for {t}: pick one small action, one time of day, and one person to tell about {u}.",
        "When {t} starts, pause, breathe, and name {u} out loud.",
        "Track {t} on a scale from zero to ten so you can see whether {u} helps.",
    ],
}

FILLER = [
    "And I think that is really important.",
    "So let's talk about that for a moment.",
    "You know, this comes up all the time.",
    "I want to slow down here.",
    "Stay with me on this one.",
    "This is something I see again and again.",
]

QUESTION_FORMS = [
    "I've been dealing with {t} for a long time and lately {u} has gotten worse. What can I do?",
    "How do I know if what I'm going through with {t} is normal? It feels connected to {u}.",
    "My partner says I need help with {t}, but I don't know where to start with {u}. Any advice?",
    "Why does {t} keep happening to me, even after years of working on {u}?",
]


def synthetic_corpus(n_segments: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(segments in the curated_segments shape, conversations in the curated_conversations shape)."""
    rng = random.Random(seed)
    topics = list(TOPICS)
    rows = []
    for n in range(n_segments):
        style = rng.choices(STYLES, weights=[6, 1, 2, 3])[0]  # unbalanced, as in real corpora
        main = rng.choice(topics)
        other = rng.choice(topics) if rng.random() < 0.3 else main
        sentences = []
        for _ in range(rng.randint(8, 16)):
            topic = main if rng.random() < 0.8 else other
            t, u = rng.sample(TOPICS[topic], 2)
            sentences.append(rng.choice(FRAMES[style]).format(t=t, u=u))
            if rng.random() < 0.3:
                sentences.append(rng.choice(FILLER))
        text = " ".join(sentences)
        rows.append(
            {
                "segment_id": content_id(text),
                "text": text,
                "style": style,
                "expert": EXPERT_INDEX[style],
                "source": "synthetic",
                "file": f"synthetic_{n // 20:03d}.txt",
            }
        )
    segments = pd.DataFrame(rows).drop_duplicates("segment_id").reset_index(drop=True)
    questions = []
    for topic, terms in TOPICS.items():
        for form in QUESTION_FORMS:
            t, u = rng.sample(terms, 2)
            q = form.format(t=t, u=u)
            questions.append({"dataset": "counseling", "question_id": content_id(q), "prompt": q, "response": f"About {topic}."})
    return segments, pd.DataFrame(questions)
