"""Hand-written segments for the curation tests: for every rule a defect and a clean look-alike.

Imported by the other test_curation_* modules; the sanity test at the bottom keeps the fixtures honest
(clean texts are long enough and distinct).
"""

from __future__ import annotations

import pandas as pd

from pixel_pipeline.core.ids import content_id, record_id
from pixel_pipeline.core.records import EXPERT_INDEX

CLEAN = {
    "trauma": (
        "So when we talk about complex trauma, what we are really talking about is a nervous system that learned to "
        "survive in an environment that was not safe for a long time. And I want you to hear this, because it "
        "matters: the hypervigilance, the people pleasing, the way you scan a room the moment you walk in, none of "
        "that is a character flaw. Those were brilliant adaptations. They kept you alive when you were small and had "
        "no other options. The problem is that the body keeps running the old program long after the danger has "
        "passed. Healing does not mean erasing those responses. It means slowly teaching your body that the present "
        "is different from the past. That happens through safe relationships, through grounding practices, and "
        "through a lot of patience with yourself. Many of my clients tell me they feel like they should be further "
        "along by now. I understand that frustration, but recovery from relational trauma is not linear. You will "
        "have weeks where you feel strong and then a smell or a tone of voice brings you right back. That is not "
        "failure. That is your nervous system doing what it was trained to do, and each time you notice it with "
        "compassion instead of shame, you are building a new pathway."
    ),
    "education": (
        "Let me explain what attachment theory actually says, because it gets misunderstood a lot online. John "
        "Bowlby observed that infants are biologically wired to stay close to a caregiver, and Mary Ainsworth later "
        "described patterns in how children respond when that caregiver leaves and returns. Securely attached "
        "children protest the separation, are comforted on reunion, and go back to playing. Anxiously attached "
        "children are hard to soothe, while avoidant children seem indifferent even though their heart rate tells a "
        "different story. Now, the important part for adults is that these patterns are not life sentences. "
        "Researchers talk about earned security, which means that people who had difficult early relationships can "
        "develop a secure way of relating through reflective work, therapy, and consistent relationships later in "
        "life. So if you recognise yourself in the anxious or avoidant description, treat it as information about "
        "what you needed and did not get, not as a label that defines who you are going to be. Understanding the "
        "pattern is the first step, and practicing new responses in safe relationships is the second."
    ),
    "empathy": (
        "I hear how exhausted you are. You have been holding everything together for everyone else, your kids, your "
        "job, your mother who keeps calling, and nobody has asked how you are doing in a very long time. It makes "
        "complete sense that you feel numb some days and then cry in the car on the way home. That is what happens "
        "when grief and stress have nowhere to go. I want you to know that feeling this way does not mean you are "
        "weak or ungrateful. It means you are a human being carrying more than one person should carry alone. You "
        "are allowed to put something down. You are allowed to say that this is hard. And you deserve the same "
        "gentleness that you give so freely to the people around you. Sometimes the bravest thing is simply "
        "admitting to one trusted person that you are not okay right now, and letting them sit with you in it "
        "without trying to fix anything. You do not have to earn rest, and you do not have to have it all figured "
        "out before you ask for support."
    ),
    "practical": (
        "Here is a simple plan you can start this week when anxiety spikes in the evening. First, pick a fixed "
        "worry window, about fifteen minutes at the same time each day, and when a worry shows up outside that "
        "window, write it down in one line and tell yourself you will look at it later. Second, before bed, do four "
        "rounds of slow breathing where the exhale is longer than the inhale, for example in for four counts and out "
        "for six. Third, put your phone in another room thirty minutes before you want to sleep, because scrolling "
        "keeps the threat system busy. Fourth, if you wake up at night and cannot settle within twenty minutes, get "
        "up, sit somewhere dim, and read something boring until you feel sleepy again. None of these steps will fix "
        "everything overnight, and that is fine. Track what you tried in a small notebook for two weeks, notice "
        "which step helped the most, and keep that one. If the anxiety stays high or starts to affect your work and "
        "relationships, that is a good moment to talk with a therapist or your doctor about more support."
    ),
    "grief": (
        "Grief after losing a parent often comes in waves that nobody prepares you for. In the first weeks there "
        "are tasks to do, calls to make, forms to sign, and that busyness can hold the feelings at a distance. Then "
        "the house gets quiet and the loss lands in your body. You might feel anger, relief, guilt, or all three in "
        "the same afternoon, and every one of those reactions is normal. What helps most people is not rushing to "
        "feel better but making room for the relationship to change shape. Some of my clients write letters to the "
        "person they lost. Others keep a ritual, like cooking a recipe their mother loved on her birthday. Talking "
        "about the person, saying their name out loud, and letting friends know that you want to remember rather "
        "than avoid the subject can make the grief less lonely. And if months pass and you still cannot function, "
        "sleep, or eat, that is a sign to reach out to a grief counselor, because prolonged grief is treatable and "
        "you do not have to carry it alone."
    ),
    "boundaries": (
        "Setting a boundary with family is one of the hardest things people bring to therapy, because the guilt "
        "starts before you have even opened your mouth. A boundary is not a punishment and it is not a demand that "
        "the other person change. It is a clear statement of what you will do to protect your wellbeing. For "
        "example, instead of saying you have to stop criticizing my partner, you might say if the conversation turns "
        "to criticizing my partner, I am going to leave the dinner early. Then you follow through calmly, without a "
        "long explanation. Expect pushback the first few times, because when a family system has worked one way for "
        "decades, any change feels like a threat. That discomfort does not mean you did something wrong. It usually "
        "means the old pattern is being interrupted. Over time, most people find that relationships with clear "
        "limits feel safer and more honest, and the resentment that used to build up quietly starts to fade."
    ),
}

# Look-alikes: clean texts that share a surface feature with a defect and must survive.
LOOKALIKE = {
    # one quoted Greek word inside English (garbled must not fire)
    "greek_word": CLEAN["education"].replace(
        "Let me explain what attachment theory actually says,",
        "The word psychology comes from the Greek ψυχή, meaning soul. Let me explain what attachment theory actually says,",
    ),
    # a short breathing cue repeated a few times (repetition must not fire)
    "breathing_cue": CLEAN["practical"].replace(
        "Second, before bed,", "Breathe in, breathe out. Breathe in, breathe out. Breathe in, breathe out. Second, before bed,"
    ),
    # "subscribe" in its ordinary meaning, and one closing thank-you (housekeeping must not fire)
    "subscribe_belief": CLEAN["trauma"].replace(
        "none of that is a character flaw.",
        "none of that is a character flaw, even if you subscribe to the belief that it is.",
    )
    + " Thanks for watching.",
    # supportive crisis content (flagged, kept)
    "crisis_supportive": (
        "If you are having thoughts of suicide, I want you to know that those thoughts are a sign of how much pain "
        "you are in, not a sign that you are broken. Please tell someone you trust today, and if you are in the "
        "United States you can call or text 988 to reach the Suicide and Crisis Lifeline at any hour. Many people who "
        "once felt that ending their life was the only way out later describe how relieved they are that they "
        "reached out. Pain narrows our vision, and support helps widen it again. A therapist can help you build a "
        "safety plan: a written list of warning signs, coping steps, people to call, and ways to make your "
        "environment safer, such as asking someone to hold onto medications for a while. You deserve support, and "
        "reaching out is a sign of strength rather than weakness."
    ),
    # medication mentioned safely (harmful must not fire)
    "medication_safe": (
        "Some people feel better after a few months on an antidepressant and wonder whether they can stop. Please "
        "never stop taking your medication on your own, because stopping suddenly can cause withdrawal symptoms and "
        "a return of depression. If you want to come off it, talk with your doctor about a slow taper and a plan "
        "for what to watch for. Many people do reduce their medication successfully when they do it gradually with "
        "support. It also helps to keep therapy going during that time, so that you have a place to notice early "
        "warning signs and practice the coping skills that will carry you forward after the medication is gone."
    ),
}

DEFECTS = {
    "garbled": (
        CLEAN["trauma"][:400] + " и тогда он сказал что это 我们 的 问题 и ничего не изменилось "
        + CLEAN["trauma"][400:800] + " 因为 他们 不知道 , it's , you know , like , the Привет ... "
    ),
    "language": (
        "Cuando hablamos de trauma complejo, lo que realmente estamos describiendo es un sistema nervioso que aprendió "
        "a sobrevivir en un ambiente que no era seguro durante mucho tiempo. La hipervigilancia, la necesidad de "
        "complacer a los demás y la forma en que examinas una habitación en cuanto entras no son defectos de "
        "carácter. Fueron adaptaciones brillantes que te mantuvieron con vida cuando eras pequeño y no tenías otras "
        "opciones. Sanar no significa borrar esas respuestas, sino enseñarle poco a poco a tu cuerpo que el presente "
        "es diferente del pasado, a través de relaciones seguras y mucha paciencia contigo mismo."
    ),
    "repetition": (
        "And so we close tonight in prayer, asking for peace over every heart that is listening right now. "
        + "Amen. " * 20
        + "Thank you all for being here with us, and may you carry this peace into the week ahead with you."
    ),
    "off_domain": (
        "The federal prosecutor in Bern announced on Tuesday that three army procurement officers have been charged "
        "with fraud after an audit found that contracts for armoured vehicle spare parts were inflated by more than "
        "twelve million francs over six years. According to the indictment, the officers steered tenders to a "
        "supplier in Thun owned by a relative of one of the accused and approved invoices for parts that were "
        "never delivered. The defence ministry said it had suspended the officers and tightened its rules for "
        "awarding contracts above one hundred thousand francs. Parliament's finance committee will question the "
        "head of the procurement agency next month, and opposition parties are calling for an independent review "
        "of all defence contracts signed since 2015. The trial is expected to begin in the spring at the federal "
        "criminal court in Bellinzona, and the accused face sentences of up to five years if convicted."
    ),
    "housekeeping": (
        "Hey everyone, welcome back to the channel, and before we get started make sure you hit that like button and "
        "subscribe so you never miss a video. Today's sponsor is CalmBox, and you can use code HEALING for 20% off "
        "your first month. We're live right now, so drop your questions in the chat and I will try to get to as many "
        "as I can. Also, enrollment for my new eight week course on anxiety is open, and the link is in the "
        "description. Can everyone hear me okay? Let me know in the chat. Alright, we will talk a little about "
        "stress today."
    ),
    "too_short": "Yeah, exactly. Thank you so much.",
    "harmful_medication": (
        "Honestly, you do not need those pills. Just stop taking your medication this week and throw the rest away, "
        "your doctor only wants to keep you dependent. " + CLEAN["empathy"][:400]
    ),
    "harmful_contempt": (
        "You are pathetic, and nobody cares about your excuses. Stop whining about your childhood and get over it. "
        + CLEAN["boundaries"][:500]
    ),
    "harmful_self_harm": (
        "If cutting makes you feel better then you should keep doing it, it is your body after all. "
        + CLEAN["grief"][:500]
    ),
}

PII_TEXT = (
    "Hi, my name is Sarah Johnson and I have been struggling with panic attacks since my divorce. You can reach my "
    "office at (555) 123-4567 or 555.987.6543, or +44 20 7946 0958, email me at dr.smith@healingpractice.com, visit "
    "https://www.healingpractice.com/booking or www.calmmind.org, follow @calm_with_sarah, and our office is at "
    "1234 Maple Avenue, Springfield. In a crisis call 988 or 1-800-273-8255."
)

MAIN_EDUCATOR_SOURCE = "Healing Minds with Dr. Lena Hart"  # the sample corpus's main channel (data/)


def segments_frame(texts: dict[str, str], source: str = MAIN_EDUCATOR_SOURCE, style: str = "therapeutic",
                   quality: float | None = 0.8) -> pd.DataFrame:
    """A raw_segments table (CONTRACTS.md columns) from {name: text}; `file` carries the name for lookup."""
    rows = []
    for i, (name, text) in enumerate(texts.items()):
        rows.append({
            "segment_id": content_id(text), "text": text, "origin": "segments_file",
            "input_file": f"training_segments/{style}_high_quality.json", "row_index": i, "file": f"{name}.txt",
            "source": source, "style_given": style, "confidence_given": 4.2, "quality": quality,
            "quality_band": "high", "style_predicted": style, "style_confidence": 0.7, "style": style,
            "expert": EXPERT_INDEX[style], "word_count": len(text.split()),
        })
    return pd.DataFrame(rows)


def conversations_frame(pairs: list[tuple[str, str]], dataset: str = "counseling", source: str = "fixture") -> pd.DataFrame:
    import json

    rows = []
    for i, (prompt, response) in enumerate(pairs):
        turns = [{"role": "client", "content": prompt}, {"role": "therapist", "content": response}]
        rows.append({
            "record_id": record_id(turns), "dataset": dataset, "question_id": content_id(prompt), "prompt": prompt,
            "response": response,
            "conversation": json.dumps({"conversation": turns, "metadata": {"source": source, "dataset": dataset}}),
            "n_turns": 2, "source": source, "input_file": f"{dataset}/fixture.jsonl", "row_index": i,
        })
    return pd.DataFrame(rows, columns=["record_id", "dataset", "question_id", "prompt", "response", "conversation",
                                       "n_turns", "source", "input_file", "row_index"])


def test_fixtures_are_distinct_and_long_enough():
    texts = list(CLEAN.values()) + list(LOOKALIKE.values())
    assert len({content_id(t) for t in texts}) == len(texts)
    assert all(len(t.split()) >= 60 for t in texts)
