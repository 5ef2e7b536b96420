"""Danger signs: symptom codes and finding them in free text.

Why: the reference (BP-DANGER, GLU-DANGER) says certain symptoms make *any* reading urgent — a
patient with 150/95 and chest pain needs care now, not a tip about salt.  Patients mention symptoms
in their own words next to a reading ("血压160/100 头痛得厉害"), so the bot looks for them in every
message.  The codes are stable strings stored with the assessment and turned into words by the UI.

Bias: a missed emergency is worse than a needless question, so matching is generous; only a clear
negation right before the phrase ("no chest pain", "没有胸痛", "不胸闷") suppresses it.
"""

from __future__ import annotations

import re

# --- symptom codes -----------------------------------------------------------------------------
# clinical-reference: BP-DANGER
ALTERED_CONSCIOUSNESS = "altered_consciousness"
SEVERE_HEADACHE = "severe_headache"
SEVERE_DIZZINESS = "severe_dizziness"
NAUSEA_VOMITING = "nausea_vomiting"
BLURRED_VISION = "blurred_vision"
EYE_PAIN = "eye_pain"
PALPITATIONS = "palpitations"
CHEST_PAIN = "chest_pain"  # chest tightness or pain (胸闷/胸痛)
BREATHLESSNESS = "breathlessness"  # includes "cannot lie flat"
PREGNANCY = "pregnancy"  # pregnancy or breast-feeding; a danger sign only with raised BP
# clinical-reference: GLU-DANGER
CONFUSION = "confusion"  # confusion or behaviour change
FRUITY_BREATH = "fruity_breath"
HEAVY_THIRST_URINATION = "heavy_thirst_urination"
ABDOMINAL_PAIN = "abdominal_pain"
DEEP_FAST_BREATHING = "deep_fast_breathing"
FAST_HEART_RATE = "fast_heart_rate"  # heart rate > 100 persistently
HIGH_FEVER = "high_fever"  # temperature > 39 C
SUDDEN_VISION_LOSS = "sudden_vision_loss"
# clinical-reference: BP-LOW  (symptoms that turn a low reading into an alert)
DIZZINESS = "dizziness"
FAINTING = "fainting"

BP_DANGER_SIGNS: frozenset[str] = frozenset(
    {
        ALTERED_CONSCIOUSNESS,
        CONFUSION,  # confusion is altered consciousness too
        SEVERE_HEADACHE,
        SEVERE_DIZZINESS,
        NAUSEA_VOMITING,
        BLURRED_VISION,
        EYE_PAIN,
        PALPITATIONS,
        CHEST_PAIN,
        BREATHLESSNESS,
        PREGNANCY,
    }
)
GLU_DANGER_SIGNS: frozenset[str] = frozenset(
    {
        CONFUSION,
        ALTERED_CONSCIOUSNESS,
        FRUITY_BREATH,
        HEAVY_THIRST_URINATION,
        NAUSEA_VOMITING,
        ABDOMINAL_PAIN,
        DEEP_FAST_BREATHING,
        FAST_HEART_RATE,
        HIGH_FEVER,
        SUDDEN_VISION_LOSS,
    }
)
BP_LOW_SYMPTOMS: frozenset[str] = frozenset({DIZZINESS, SEVERE_DIZZINESS, FAINTING})
ALL_SYMPTOMS: frozenset[str] = BP_DANGER_SIGNS | GLU_DANGER_SIGNS | BP_LOW_SYMPTOMS

# --- phrases -----------------------------------------------------------------------------------
_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = (
    ((ALTERED_CONSCIOUSNESS,),
     r"意识不清|意识模糊|神志不清|昏迷|叫不醒|喊不醒|没反应|unconscious|unresponsive|not\s+responding"
     r"|won'?t\s+wake|can'?t\s+wake|cannot\s+wake|altered\s+consciousness|drowsy\s+and\s+confused"),
    ((CONFUSION,),
     r"糊涂|说胡话|胡言乱语|反应迟钝|行为异常|认不出人|confused|confusion|disoriented|acting\s+(?:strange|odd|weird)"
     r"|behaving\s+(?:strangely|oddly)|not\s+making\s+sense"),
    ((SEVERE_HEADACHE,),
     r"头(?:痛|疼)(?:得|的)?(?:很|非常|特别|太|好)?厉害|剧烈(?:的)?头(?:痛|疼)|头(?:很|非常|特别|太|好|巨|超)(?:痛|疼)"
     r"|头痛欲裂|(?:severe|bad|terrible|worst|splitting|intense|excruciating|really\s+bad|very\s+bad)"
     r"\s+headache|headache\s+is\s+(?:severe|terrible|very\s+bad)"),
    ((SEVERE_DIZZINESS, DIZZINESS),
     r"头晕得?(?:很|非常|特别|太|好)?厉害|(?:严重|剧烈)(?:的)?头晕|天旋地转|晕得站不住|头(?:很|非常|特别|太|好)晕"
     r"|(?:very|extremely|really|so|severely)\s+dizzy|severe\s+dizziness|room\s+(?:is\s+)?spinning"),
    ((DIZZINESS,), r"头晕|头昏|眩晕|发晕|dizzy|dizziness|light[-\s]?headed|vertigo"),
    ((FAINTING,), r"晕倒|昏倒|晕厥|昏厥|晕过去|fainted|fainting|faint(?![a-z])|passed\s+out|blacked\s+out|collapsed"),
    ((NAUSEA_VOMITING,), r"呕吐|恶心|想吐|吐了|vomit(?:ing|ed)?|throwing\s+up|threw\s+up|nausea|nauseous|nauseated"),
    ((BLURRED_VISION,), r"视力模糊|视物模糊|看东西模糊|看不清|眼花|blurr?(?:y|ed)\s+vision|vision\s+is\s+blurr?(?:y|ed)"),
    ((SUDDEN_VISION_LOSS,),
     r"突然看不见|突然失明|失明|看不见了|sudden(?:ly)?\s+(?:vision\s+loss|lost\s+(?:my\s+)?vision|can'?t\s+see|blind)"
     r"|lost\s+(?:my\s+)?vision|went\s+blind"),
    ((EYE_PAIN,), r"眼(?:睛)?(?:痛|疼|胀痛)|eye\s+pain|eyes?\s+hurts?|painful\s+eyes?"),
    ((PALPITATIONS,), r"心慌|心悸|心跳(?:很|特别|非常|好)?(?:快|乱)|palpitations?|heart\s+(?:is\s+)?(?:racing|pounding|fluttering)"),
    ((FAST_HEART_RATE,),
     r"心动过速|tachycardia|(?:心率|心跳|heart\s*rate|pulse)\s*(?:一直|持续|总是|always|is|over|above|超过|大于|高于|>)?"
     r"\s*(?:10[1-9]|1[1-9][0-9]|[2-9][0-9]{2})"),
    ((CHEST_PAIN,),
     r"胸(?:口|部)?(?:痛|疼|闷|压迫|发紧|憋)|chest\s+(?:pain|tightness|pressure|hurts?|is\s+tight|feels\s+tight)"
     r"|tight(?:ness)?\s+(?:in\s+(?:my|the)\s+)?chest|pain\s+in\s+(?:my|the)\s+chest"),
    ((BREATHLESSNESS,),
     r"呼吸困难|喘不(?:上|过)气|上不来气|气短|气促|气喘|憋气|不能平躺|躺不下|没法躺平|can'?t\s+breathe|cannot\s+breathe"
     r"|short(?:ness)?\s+of\s+breath|breathless|hard\s+to\s+breathe|struggling\s+to\s+breathe"
     r"|can'?t\s+lie\s+(?:down\s+)?flat|cannot\s+lie\s+(?:down\s+)?flat"),
    ((PREGNANCY,), r"怀孕|孕妇|妊娠|哺乳|喂奶|pregnan(?:t|cy)|breast[-\s]?feeding"),
    ((FRUITY_BREATH,), r"烂苹果味|水果味|丙酮味|fruity\s+breath|breath\s+smells\s+(?:fruity|sweet)|acetone"),
    ((HEAVY_THIRST_URINATION,),
     r"(?:特别|非常|很|老是|一直)(?:口)?渴|口渴(?:得)?(?:厉害|难受)|多饮多尿|尿(?:特别|非常|很)多|一直(?:想)?(?:喝水|上厕所|小便)"
     r"|(?:very|extremely|really|so)\s+thirsty|(?:peeing|urinating)\s+(?:a\s+lot|constantly|all\s+the\s+time)"),
    ((ABDOMINAL_PAIN,), r"肚子(?:痛|疼)|腹(?:痛|疼)|胃(?:痛|疼)|abdominal\s+pain|stomach\s*(?:pain|ache)|belly\s+(?:pain|ache)|tummy\s+ache"),
    ((DEEP_FAST_BREATHING,),
     r"呼吸(?:又)?深(?:又)?快|大口(?:喘气|呼吸)|(?:deep|rapid|fast)\s+(?:and\s+(?:deep|rapid|fast)\s+)?breathing"
     r"|breathing\s+(?:fast|deep|rapidly|heavily)"),
    ((HIGH_FEVER,),
     r"高烧|高热|high\s+fever|(?:发烧|发热|体温|fever|temperature|temp)\D{0,6}"
     r"(?:39\.\d*[1-9]|4[0-4](?:\.\d+)?)"),
)  # fmt: skip
_COMPILED: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (codes, re.compile(rx)) for codes, rx in _PHRASES
)
# A negation at the end of the text before the phrase, within the same clause.
# Every phrase at once: most messages ("135/85") mention none, and one search says so where the
# phrases one by one took twenty (issue 4: this runs twice per message, in triage and the handler).
_ANY_PHRASE = re.compile("|".join(f"(?:{rx})" for _codes, rx in _PHRASES))
_NEGATION_EN_RE = re.compile(
    r"(?:(?<![a-z])(?:no|not|never|without|denies|deny|denied|none|nor|free\s+of)|n't)"
    r"(?:\s+[a-z']+){0,3}\s*\Z"
)
_NEGATION_ZH_RE = re.compile(
    r"(?:没有|没|无|不|未|否认|并无|并没有)(?:有|感到|感觉|觉得|出现|什么|任何)?\s*\Z"
)
_CLAUSE_BREAK_RE = re.compile(r"[,.;!?，。；！？\n]|\bbut\b|\bhowever\b|但是|但|不过|可是")


def _negated(prefix: str) -> bool:
    parts = _CLAUSE_BREAK_RE.split(prefix[-40:])
    clause = parts[-1] if parts else ""
    return bool(_NEGATION_ZH_RE.search(clause) or _NEGATION_EN_RE.search(clause))


def detect_danger_signs(text: str) -> frozenset[str]:
    """Symptom codes mentioned in ``text`` (Chinese or English), minus clearly negated ones.

    >>> sorted(detect_danger_signs("血压180/110，胸闷，头痛得厉害"))
    ['chest_pain', 'severe_headache']
    >>> detect_danger_signs("no chest pain, feeling fine")
    frozenset()
    """
    if not text:
        return frozenset()
    s = text.lower()
    if not _ANY_PHRASE.search(s):
        return frozenset()
    found: set[str] = set()
    for codes, rx in _COMPILED:
        for m in rx.finditer(s):
            if not _negated(s[: m.start()]):
                found.update(codes)
                break
    return frozenset(found)
