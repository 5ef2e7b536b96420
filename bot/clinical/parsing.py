"""Understand readings typed as free text, in Chinese and English.

Why free text: elderly patients type "150/95", "血压150/95 心率72" or "空腹血糖6.8" anywhere in the
chat, often with an IME that produces full-width digits, and they should not have to learn commands.
Why so careful about *not* finding readings: a greeting, a date, a phone number or "I walked 30 min"
that is taken as a reading would be stored in the medical record and might even raise an alert.  So
the parser only accepts a lone number when the rest of the message is empty or harmless filler
("today", "早上", "my", ...), and every implausible or unit-ambiguous value carries a ``problem`` code
so that the dialog asks before storing (see ``REJECT_PROBLEMS`` / ``CONFIRM_PROBLEMS``).

How it works (all regexes precompiled; no per-call setup, target >= 50 000 messages/s):

1. normalise: full-width -> ASCII, Chinese punctuation, lower case; "6。8" -> "6.8", "6,8" -> "6.8";
2. split into clauses on , ; ! ? newlines and sentence dots;
3. in each clause blank out (replace with spaces, so positions stay valid) everything recognised:
   noise (dates, clock times, phone numbers, durations, counts, doses, HbA1c, temperatures), pulse,
   glucose-with-unit, weight, labelled / slash / "over" / keyword blood pressure, glucose contexts and
   keywords;
4. the numbers left over become glucose (when the clause spoke of glucose), a bare BP pair/triple, a
   bare decimal (glucose, context unknown) or a bare integer 40-600 (glucose in mg/dL?, ask).

Fast paths, none of which may change a result (tests/clinical/test_parser_fast_paths.py): messages
without a digit or a meter word leave at once; the commonest whole-message shapes ("150/95", "6.8",
"血压150/95 心率72", "空腹血糖 6.8") skip steps 2-4.

Chinese number words ("一百五") are not understood; the dialog's buttons cover that case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.clinical.thresholds import (
    DBP_MAX,
    DBP_MIN,
    GLU_BARE_MGDL_MAX,
    GLU_BARE_MGDL_MIN,
    GLU_MAX,
    GLU_METER_HI,
    GLU_METER_LO,
    GLU_MIN,
    JIN_KG,
    LB_KG,
    MGDL_PER_MMOL,
    PULSE_CONFIRM_ABOVE,
    PULSE_CONFIRM_BELOW,
    PULSE_MAX,
    PULSE_MIN,
    SBP_CONFIRM_FROM,
    SBP_MAX,
    SBP_MIN,
    WEIGHT_MAX_KG,
    WEIGHT_MIN_KG,
    WEIGHT_UNITLESS_CONFIRM_FROM,
)

Kind = Literal["bp", "glucose", "weight"]
GlucoseContext = Literal["fasting", "before_meal", "after_meal", "bedtime", "random"]

KIND_BP: Kind = "bp"
KIND_GLUCOSE: Kind = "glucose"
KIND_WEIGHT: Kind = "weight"

GLUCOSE_CONTEXTS: tuple[str, ...] = ("fasting", "before_meal", "after_meal", "bedtime", "random")

# Problem codes.  Reject: the value cannot be stored, tell the user why.  Confirm: store only after
# the user presses a confirmation button (the dialog shows the interpretation, e.g. "126 mg/dL = 7.0").
PROBLEM_OUT_OF_RANGE = "out_of_range"  # clinical-reference: BP-RANGE / GLU-RANGE
PROBLEM_SYS_NOT_ABOVE_DIA = "systolic_not_above_diastolic"  # clinical-reference: BP-RANGE
PROBLEM_UNIT_UNCLEAR = "unit_unclear"  # clinical-reference: GLU-RANGE (bare number > 40)
PROBLEM_NEEDS_CONFIRMATION = "needs_confirmation"  # clinical-reference: BP-RANGE confirm band; bare HI/LO
PROBLEM_AMBIGUOUS = "ambiguous"  # "95 150": numbers given low-high without a slash; we swapped them
REJECT_PROBLEMS: frozenset[str] = frozenset({PROBLEM_OUT_OF_RANGE, PROBLEM_SYS_NOT_ABOVE_DIA})
CONFIRM_PROBLEMS: frozenset[str] = frozenset(
    {PROBLEM_UNIT_UNCLEAR, PROBLEM_NEEDS_CONFIRMATION, PROBLEM_AMBIGUOUS}
)


@dataclass(frozen=True, slots=True)
class ParsedReading:
    """One reading found in a message.

    Only the fields of its ``kind`` are set.  Values are filled even when ``problem`` says the
    reading cannot be stored, so the bot can say *what* it understood ("150/160? the upper number
    must be higher").

    ``unit_typed``: for glucose "mmol" / "mgdl" / None (not typed); for weight "kg" / "jin" / "lb" /
    None.  ``meter``: "HI" / "LO" when the patient reported a meter screen instead of a number.
    """

    kind: Kind
    systolic: int | None = None
    diastolic: int | None = None
    pulse: int | None = None
    mmol: float | None = None
    context: GlucoseContext | None = None
    unit_typed: str | None = None
    meter: Literal["HI", "LO"] | None = None
    kg: float | None = None
    problem: str | None = None

    @property
    def storable(self) -> bool:
        """True when the reading may be stored without asking the user anything."""
        return self.problem is None

    @property
    def rejected(self) -> bool:
        return self.problem in REJECT_PROBLEMS

    @property
    def needs_confirmation(self) -> bool:
        return self.problem in CONFIRM_PROBLEMS




# ----------------------------------------------------------------------------------------------
# Normalisation
# ----------------------------------------------------------------------------------------------
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH.update(
    {
        0x3000: " ",  # ideographic space
        0x00A0: " ",
        ord("、"): ",",
        ord("。"): ",",  # sentence end; "6。8" was turned into "6.8" before translating
        ord("∕"): "/",
        ord("⁄"): "/",
        ord("—"): "-",
        ord("–"): "-",
        ord("〜"): "~",
        ord("“"): '"',
        ord("”"): '"',
    }
)
# Any character _FULLWIDTH changes.  str.translate looks every character up in the dict and pays
# for a KeyError on each miss, so most messages (plain ASCII, or Chinese without full-width
# characters) skip it: one regex scan is several times cheaper.
_TRANSLATED_RE = re.compile("[" + "".join(re.escape(chr(cp)) for cp in _FULLWIDTH) + "]")
_IDEO_DOT_RE = re.compile(r"(?<=\d)。(?=\d)")  # Chinese IME in Chinese mode types "。" for "."
_DEC_COMMA_RE = re.compile(r"(?<![\d.,])(\d{1,2}),(\d)(?![\d,])")  # "6,8" -> "6.8"
_DIGIT_RE = re.compile(r"\d")


def _normalise(text: str) -> str:
    if text.isascii():  # O(1) in CPython; nothing in _FULLWIDTH is ASCII
        return text
    if "。" in text:
        text = _IDEO_DOT_RE.sub(".", text)
    if _TRANSLATED_RE.search(text) is None:
        return text
    return text.translate(_FULLWIDTH)


def _spaces(m: re.Match[str]) -> str:
    return " " * (m.end() - m.start())


def _blank(s: str, a: int, b: int) -> str:
    return s[:a] + " " * (b - a) + s[b:]


# ----------------------------------------------------------------------------------------------
# Patterns (all run on lower-cased, normalised text)
#
# Speed note: CPython's regex engine skips quickly through a string only when every alternative of
# the pattern starts with a literal character.  So word boundaries are written *after* the first
# letter ("f(?<![a-z]f)asting" instead of "(?<![a-z])fasting", see ``_words``), patterns that start
# with a digit are tried only at the starts of digit runs, and patterns with named groups are used
# only to classify a match a fast pattern already found.
# ----------------------------------------------------------------------------------------------
def _words(*alternatives: str) -> str:
    """Alternation where ASCII words get word boundaries without losing the first-literal speed-up."""
    out = []
    for alt in alternatives:
        first = alt[0]
        if "a" <= first <= "z":
            out.append(f"{first}(?<![a-z]{first}){alt[1:]}(?![a-z])")
        else:
            out.append(alt)
    return "(?:" + "|".join(out) + ")"


_SPLIT_RE = re.compile(r";|!|\?|\n|\r|,(?!\d)|,(?<!\d,)|\.(?=\s|$)")

_DURATION_UNITS = (
    r"分钟|分鐘|min(?:ute)?s?|秒|sec(?:ond)?s?|小时|小時|个?钟头|hours?|hrs?|h(?![a-z])|天|days?"
    r"|岁|歲|years?(?:\s*old)?|yrs?|个|個|人|people|persons?|片|粒|颗|tablets?|tabs?|pills?|步|steps?"
    r"|k(?![a-z])|单位|units?|iu|u(?![a-z])|元|块|yuan|rmb|cm|厘米|公分|米|km|公里|meters?|metres?|年"
    r"|周|週|weeks?|months?|times|遍|杯|cups?|glass(?:es)?|ml|毫升|升|克|g(?![a-z])"
    r"|mg(?!\s*/\s*dl)|毫克(?!\s*/\s*分升|每分升)|kcal|千卡|卡|x(?![a-z])|分(?!升)"
)
# Noise that starts at the beginning of a digit run (matched with .match at that position).
_NOISE_AT_RE = re.compile(
    r"\d{4}\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*[日号]?)?"  # 2024-05-01, 2024年5月
    r"|[0-3]?\d[-/.][0-3]?\d[-/.](?:\d{4}|\d{2})(?!\d)"  # 01/05/2024
    r"|(?<!/)(?:0?[1-9]|1[0-2])[/-](?:0?[1-9]|[12]\d|3[01])(?![\d/]|\.\d)"  # 5/1, 12-25
    r"|\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号]?)?|\d{1,2}\s*[日号]"  # 5月1日, 3号
    r"|\d{1,2}\s*:\s*\d{2}(?:\s*:\s*\d{2})?(?:\s*(?:am|pm|a\.m\.?|p\.m\.?))?(?!\d)"  # 8:30
    r"|\d{1,2}\s*(?:am|pm|a\.m\.?|p\.m\.?)(?![a-z])"  # 8am
    r"|\d{1,2}\s*(?:点|點|时|時)(?:\s*(?:半|钟|整|\d{1,2}\s*分?))?"  # 8点半
    r"|\+\d{1,3}(?!\d)"  # +86
    r"|(?:\d{3,4}[-\s])?\d{3,4}[-\s]\d{4}(?!\d)"  # 138-1234-5678, 010 1234 5678
    r"|\d{4,}(?:\.\d+)?"  # phone numbers, years, step counts
    r"|\d+(?:\.\d+)?\s*(?:%|度|°c?|℃)"
    r"|\d+(?:\.\d+)?(?:\s*[-~到至]\s*\d+(?:\.\d+)?)?\s*+(?:" + _DURATION_UNITS + r")"
)
# Noise introduced by a keyword: HbA1c (a %, not a glucose reading), temperature, BMI, height.
_NOISE_KW_RE = re.compile(
    _words("hba1c", "a1c", "糖化血红蛋白", "糖化", "体温", "temperature", "temp", "发烧", "发热", "fever",
           "bmi", "身高", "height")
    + r"\s*(?:[:=]\s*)?(?:(?:是|为|is|was)\s*)?\d+(?:\.\d+)?\s*%?"
)  # fmt: skip
_TIMES_RE = re.compile(r"(?<![\d.])\d+\s*(?:次|遍|回)")  # "测了3次" (after pulse "72次/分" was taken)

_PULSE_KW_RE = re.compile(
    _words("心率", "脉搏", "脈搏", "脉率", "心跳", "pulse", r"heart\s*rate", "hr", "pr", "pul", "p")
    + r"\s*(?:[:=]\s*)?(?:(?:是|为|有|is|was|of)\s*)?(\d{2,3})(?![\d.])"
    r"(?:\s*(?:次\s*(?:/\s*分(?:钟)?|每分(?:钟)?)?|bpm|/\s*min))?"
)
_PULSE_UNIT_RE = re.compile(
    r"(?<![\d.])(\d{2,3})\s*(?:bpm|次\s*/\s*分(?:钟)?|次每分(?:钟)?|beats?\s*(?:per|/)\s*min(?:ute)?)"
)
_GLU_UNIT_RE = re.compile(
    r"(?<![\d.])(\d{1,3}(?:\.\d+)?)\s*"
    r"(?:(?P<mmol>mmol(?:\s*/\s*l)?|毫摩尔(?:\s*/\s*升|每升)?)|(?P<mgdl>mg\s*/\s*dl|毫克\s*(?:/\s*分升|每分升)))"
)
_WEIGHT_UNIT = r"(?:(?P<kg>kgs?|kilos?|kilograms?|公斤|千克)|(?P<jin>斤)|(?P<lb>lbs?|pounds?|磅))"
_WEIGHT_KW_RE = re.compile(
    _words("体重", "體重", "称重", "weight", r"weigh(?:ed|s|ing)?", "wt")
    + r"\s*(?:[:=]\s*)?(?:(?:是|为|有|is|was|of)\s*)?(\d{1,3}(?:\.\d+)?)(?!\d)\s*"
    + _WEIGHT_UNIT
    + r"?(?![a-z])"
)
_WEIGHT_UNIT_RE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)\s*" + _WEIGHT_UNIT + r"(?![a-z])")
_LABEL_SYS_RE = re.compile(
    _words("高压", "收缩压", "上压", "systolic", "sys", "sbp")
    + r"\s*(?:[:=]\s*)?(?:(?:是|为|有|is|was)\s*)?(\d{2,3})(?![\d.])"
)
_LABEL_DIA_RE = re.compile(
    _words("低压", "舒张压", "下压", "diastolic", "dia", "dbp")
    + r"\s*(?:[:=]\s*)?(?:(?:是|为|有|is|was)\s*)?(\d{2,3})(?![\d.])"
)
_OVER_RE = re.compile(r"(?<![\d.])(\d{2,3})\s*(?:over|比)\s*(\d{2,3})(?![\d.])")
_SLASH_RE = re.compile(r"(?<![\d./])(\d{2,3})\s*/\s*(\d{2,3})(?:\s*/\s*(\d{2,3}))?(?!\d|\.\d|\s*/\s*\d)")
_BP_KW = _words("血压", "血壓", "量压", "毫米汞柱", "bp", "b/p", r"blood\s*pressure", "mmhg")
_BP_KW_RE = re.compile(_BP_KW)
_BP_KW_PAIR_RE = re.compile(
    _BP_KW
    + r"\s*(?:[:=]\s*)?(?:(?:是|为|有|is|was|of)\s*)?(\d{2,3})(?:\s*[,\-~]\s*|\s+)(\d{2,3})(?:(?:\s*,\s*|\s+)(\d{2,3}))?(?![\d.])"
)
# Glucose context words.  _CTX_FAST finds them; _CTX_NAMED (anchored at the hit) says which context.
_CTX_WORDS = {
    "fasting": ("晨起空腹", "空腹", "早餐前", "早饭前", "fasting", "fbs", "fbg", "fpg", r"empty\s+stomach",
                r"before\s+breakfast"),
    "after_meal": (r"早餐后", "午餐后", "晚餐后", "早饭后", "午饭后", "晚饭后", "中饭后",
                   r"餐后(?:\s*(?:两|二|2)?\s*个?\s*(?:小时|钟头|h))?", r"饭后(?:\s*(?:两|二|2)?\s*个?\s*(?:小时|钟头|h))?",
                   "吃完饭", "吃饭后",
                   r"after\s+(?:breakfast|lunch|dinner|supper|(?:a\s+|the\s+|my\s+)?meals?|eating|food)",
                   r"post[-\s]?(?:meal|prandial)", "postprandial",
                   r"2\s*h(?:rs?|ours?)?\s*(?:pp|ppg|ppbs|post[-\s]?(?:meal|prandial))", "ppbs", "ppg", "pp"),
    "before_meal": ("午餐前", "晚餐前", "午饭前", "晚饭前", "中饭前", "餐前", "饭前",
                    r"before\s+(?:lunch|dinner|supper|(?:a\s+|the\s+|my\s+)?meals?|eating)",
                    r"pre[-\s]?meals?", "premeal"),
    "bedtime": ("临睡前", "睡觉前", "睡前", "bedtime", r"before\s+(?:bed|sleep(?:ing)?)", r"at\s+bed",
                r"night\s*time"),
    "random": ("随机", "随时", "random", "casual", "rbs", "rbg"),
}  # fmt: skip
_CTX_FAST_RE = re.compile(_words(*(w for words in _CTX_WORDS.values() for w in words)))
_CTX_NAMED_RE = re.compile("|".join(f"(?P<{name}>{_words(*words)})" for name, words in _CTX_WORDS.items()))
_GLU_KW_RE = re.compile(
    _words("血糖", "测糖", "指尖血", r"blood\s*(?:glucose|sugars?)", "glucose", "gluc", "glu", "sugars?",
           "bs", "bg", "bgl", "cbg", "smbg")
)  # fmt: skip
_METER_TOKEN_RE = re.compile(_words("hi", "lo"))
# Whole-message shortcuts for the most common messages ("150/95", "6.8", "126").
_QUICK_SLASH_RE = re.compile(r"\s*(\d{2,3})\s*/\s*(\d{2,3})(?:\s*/\s*(\d{2,3}))?\s*")
_QUICK_NUM_RE = re.compile(r"\s*(\d{1,3}(?:\.\d+)?)\s*")
_BARE_METER_RE = re.compile(r"\s*(HI|LO)\s*[!.]*\s*\Z")
# Whole-message shortcuts for the commonest keyword messages, on the lower-cased text: "血压150/95
# 心率72", "bp 142/91 pulse 80", "高压150低压95", "空腹血糖 6.8", "glucose 126 mg/dl", "fasting 6.1
# mmol".  Narrow on purpose (plain spaces only, one keyword of each sort, systolic >= 40 so that no
# date can match) so that they give exactly what the clause parser gives, in a quarter of the time;
# tests/clinical/test_parser_fast_paths.py checks that on generated messages.  Anything else goes
# through the clause parser.
# "早上 135/85": filler words (see _FILLER_RE) that trigger no extraction step; the test checks both.
_QUICK_WHEN_WORDS = ("今天", "早上", "晚上", "今早", "今晚", "中午", "下午", "上午", "刚才", "morning", "evening",
                     "today", "tonight")  # fmt: skip
_QUICK_WHEN = _words(*_QUICK_WHEN_WORDS) + " *"
_QUICK_BP_KW_RE = re.compile(
    "(?:" + _QUICK_WHEN + ")?"
    r"(?:" + _words("血压", "bp") + r" *)?([4-9]\d|[1-9]\d\d) */ *(\d{2,3})"
    r"(?: *" + _words("心率", "脉搏", "pulse") + r" *(\d{2,3}))? *"
)
_QUICK_LABELS_RE = re.compile(
    "(?:" + _QUICK_WHEN + ")?"
    r"(?:高压|收缩压) *(\d{2,3}) *(?:低压|舒张压) *(\d{2,3})"
    r"(?: *" + _words("心率", "脉搏", "pulse") + r" *(\d{2,3}))? *"
)
_QUICK_CTX_WORDS = ("空腹", "餐前", "饭前", "餐后", "饭后", "睡前", "fasting", "random")
_QUICK_CONTEXT: dict[str, str] = {}  # word -> context, as _CTX_NAMED_RE names it
for _w in _QUICK_CTX_WORDS:
    _named = _CTX_NAMED_RE.fullmatch(_w)
    if _named is None or _named.lastgroup is None:
        raise ValueError(f"{_w!r} is not one of the _CTX_WORDS")
    _QUICK_CONTEXT[_w] = _named.lastgroup
_QUICK_GLU_RE = re.compile(
    "(?:" + _QUICK_WHEN + ")?"
    r"(?:(" + _words(*_QUICK_CTX_WORDS) + r") *)?(" + _words("血糖", "glucose", "sugar") + r" *)?"
    r"(\d{1,3}(?:\.\d{1,2})?)(?: *(?:(mmol(?: */ *l)?)|(mg */ *dl)))? *"
)
_NUM_RE = re.compile(r"\d(?<![\d.a-z]\d)\d*(?:\.\d+)?(?![\d.a-z]|\.\d)")
_FILLER_RE = re.compile(
    _words("today", "this", "morning", "evening", "afternoon", "night", "tonight", "yesterday", "now",
           "just", "my", "mine", "is", "was", "were", "am", "pm", "are", "it", "its", "at", "reading",
           "readings", "measured", "measurement", "measure", "checked", "check", "result", "results",
           "level", "levels", "about", "around", "approx", "and", "then", "also", "the", "a", "an", "me",
           "i", "i'm", "im", "got", "have", "had", "show", "shows", "showed", "on", "in", "of", "home",
           "meter", "value", "new", "latest", "again", "only", "usual", "time", "here", "update", "log",
           "record", "mmhg",
           "今天", "今早", "今晨", "今晚", "今日", "昨天", "昨晚", "昨日", "前天", "早上", "早晨", "清晨", "上午",
           "中午", "下午", "傍晚", "晚上", "夜里", "刚才", "刚刚", "现在", "在家", "家里", "自测", "左右", "大概",
           "大约", "约", "一下", "结果", "读数", "数值", "显示", "测量", "测得", "测", "量", "了", "的", "是",
           "为", "我的", "我", "值", "又", "再", "一次", "记录", "刚", "多少")
)  # fmt: skip
_WORDCHAR_RE = re.compile(r"[a-z\u3400-\u9fff]")


# Cheap gate: one scan for trigger words tells which of the extraction steps below can match at
# all, so a clause like "150/95" does not pay for the weight, pulse, context... patterns.  A trigger
# only needs to be a superset of its step (false hits just cost that step's regex).
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "noise_kw": ("hba1c", "a1c", "糖化", "体温", "temp", "fever", "发烧", "发热", "bmi", "身高", "height"),
    "pulse": ("心率", "脉", "脈", "心跳", "pulse", "heart", "hr", "pr", "pul", "p"),
    "weight": ("体重", "體重", "称重", "weigh", "wt", "kg", "kilo", "公斤", "千克", "斤", "lb", "pound", "磅"),
    "label": ("高压", "低压", "收缩压", "舒张压", "上压", "下压", "sys", "dia", "sbp", "dbp"),
    "bp": ("血压", "血壓", "量压", "毫米汞柱", "bp", "b/p", "blood", "mmhg"),
    "ctx": ("空腹", "晨起", "早餐", "早饭", "午餐", "晚餐", "午饭", "晚饭", "中饭", "餐", "饭", "睡", "随机",
            "随时", "fasting", "fbs", "fbg", "fpg", "empty", "before", "after", "post", "pre", "pp", "ppg",
            "ppbs", "bed", "night", "random", "casual", "rbs", "rbg", "2h", "2 h"),
    "glu": ("血糖", "测糖", "指尖血", "glucose", "gluc", "glu", "sugar", "bs", "bg", "bgl", "cbg", "smbg",
            "blood"),
}  # fmt: skip
_TRIGGER_CATEGORIES: dict[str, frozenset[str]] = {}
for _category, _words_of in _TRIGGERS.items():
    for _w in _words_of:
        _TRIGGER_CATEGORIES[_w] = _TRIGGER_CATEGORIES.get(_w, frozenset()) | {_category}
_TRIGGER_RE = re.compile(
    "|".join(
        f"{w[0]}(?<![a-z]{w[0]}){re.escape(w[1:])}" if "a" <= w[0] <= "z" and w != "pp" else re.escape(w)
        for w in sorted(_TRIGGER_CATEGORIES, key=len, reverse=True)
    )
)


_CARRY_TRIGGERS = frozenset({"glu", "ctx", "label"})


def _triggered(s: str) -> frozenset[str]:
    return frozenset().union(*[_TRIGGER_CATEGORIES[word] for word in _TRIGGER_RE.findall(s)])


# Where noise can start: "+", a run of 4+ digits, a 1-2 digit number before "/" (dates), a 3-4 digit
# group followed by another group (spaced phone numbers), or a number followed (after spaces) by a
# character with which a noise pattern can go on.  A run followed by anything else ("150 over",
# "95 72", "150/95") is not noise and never pays for the big _NOISE_AT_RE match.
_NOISE_FOLLOW = (
    "-.:~年月日号点點时時%度°℃分秒小个個钟天岁歲人片粒颗步单元块厘公米周週遍杯升克卡到至毫amhdsywutpirckgx"
)
_NOISE_CANDIDATE_RE = re.compile(
    r"[+\d](?<![\d./][+\d])(?:(?<=\+)|(?=\d{3})|(?=\s*/)|(?<=[0-3])(?=\d\s*/)|(?=\d{2,3}\s\d)"
    r"|(?=[\d.]*\s*[" + _NOISE_FOLLOW + r"]))"
)
_GLU_UNIT_AHEAD_RE = re.compile(r"[\d.]+\s*(?:mmol|mg\s*/\s*dl)")
_PHONE_SPACED_RE = re.compile(r"(?:\d{3,4}\s)?\d{3,4}\s\d{4}(?!\d)")


def _mask_noise(s: str, keywords: bool) -> str:
    """Blank dates, clock times, phone numbers, durations, counts, doses, HbA1c, temperatures."""
    if keywords:
        s = _NOISE_KW_RE.sub(_spaces, s)
    pos = 0
    for cand in _NOISE_CANDIDATE_RE.finditer(s):
        start = cand.start()
        if start < pos:
            continue
        if _GLU_UNIT_AHEAD_RE.match(s, start) is not None:
            continue  # "126 mg/dl" is a glucose reading; skip the big noise match
        noise = _NOISE_AT_RE.match(s, start) or _PHONE_SPACED_RE.match(s, start)
        if noise is not None:
            pos = noise.end()
            s = _blank(s, start, pos)
    return s


def _residual_is_filler(s: str) -> bool:
    """True when nothing but filler words is left — then a lone number may be taken as a reading."""
    return _WORDCHAR_RE.search(_FILLER_RE.sub(" ", s)) is None


# ----------------------------------------------------------------------------------------------
# Builders (range rules)
# ----------------------------------------------------------------------------------------------
def _bp_problem(sys_: int, dia: int, pulse: int | None, ambiguous: bool) -> str | None:
    # clinical-reference: BP-RANGE
    if (
        not (SBP_MIN <= sys_ <= SBP_MAX)
        or not (DBP_MIN <= dia <= DBP_MAX)
        or (pulse is not None and not (PULSE_MIN <= pulse <= PULSE_MAX))
    ):
        return PROBLEM_OUT_OF_RANGE
    if sys_ <= dia:
        return PROBLEM_SYS_NOT_ABOVE_DIA
    if ambiguous:
        return PROBLEM_AMBIGUOUS
    if sys_ >= SBP_CONFIRM_FROM or (
        pulse is not None and (pulse < PULSE_CONFIRM_BELOW or pulse > PULSE_CONFIRM_ABOVE)
    ):
        return PROBLEM_NEEDS_CONFIRMATION
    return None


class _BP:
    """Mutable while a message is parsed (a pulse may arrive in a later clause)."""

    __slots__ = ("ambiguous", "dia", "end", "pulse", "sys")

    def __init__(self, sys_: int, dia: int, pulse: int | None, end: int, ambiguous: bool = False):
        self.sys, self.dia, self.pulse, self.end, self.ambiguous = sys_, dia, pulse, end, ambiguous

    def build(self) -> ParsedReading:
        return _bp_reading(self.sys, self.dia, self.pulse, self.ambiguous)


def _bp_reading(sys_: int, dia: int, pulse: int | None, ambiguous: bool = False) -> ParsedReading:
    return ParsedReading(
        kind=KIND_BP,
        systolic=sys_,
        diastolic=dia,
        pulse=pulse,
        problem=_bp_problem(sys_, dia, pulse, ambiguous),
    )


def _bare_bp(nums: list[int], end: int) -> _BP:
    """Numbers typed without slash or labels: "150 95" or "150 95 72"."""
    sys_, dia = nums[0], nums[1]
    pulse = nums[2] if len(nums) > 2 else None
    if sys_ < dia and _bp_problem(dia, sys_, pulse, False) not in REJECT_PROBLEMS:
        # "95 150": probably diastolic first.  Swap, but make the user confirm the interpretation.
        return _BP(dia, sys_, pulse, end, ambiguous=True)
    return _BP(sys_, dia, pulse, end)


def _glucose(num: str, unit: str | None, context: str | None, bare: bool) -> ParsedReading:
    value = float(num)
    problem: str | None = None
    if unit == "mgdl":
        mmol = round(value / MGDL_PER_MMOL, 1)
    elif unit == "mmol":
        mmol = round(value, 1)
    elif value > GLU_MAX or (bare and value >= GLU_BARE_MGDL_MIN):
        # clinical-reference: GLU-RANGE  a bare number > 40 is probably mg/dL: ask to confirm the unit
        mmol = round(value / MGDL_PER_MMOL, 1)
        problem = PROBLEM_UNIT_UNCLEAR
    else:
        mmol = round(value, 1)
    if not (GLU_MIN <= mmol <= GLU_MAX):  # clinical-reference: GLU-RANGE
        problem = PROBLEM_OUT_OF_RANGE
    return ParsedReading(kind=KIND_GLUCOSE, mmol=mmol, context=context, unit_typed=unit, problem=problem)  # type: ignore[arg-type]


def _meter(token: str, context: str | None, problem: str | None) -> ParsedReading:
    # clinical-reference: GLU-RANGE  "HI"/"LO" meter screens accepted as > 33.3 / < 1.1
    hi = token.upper() == "HI"
    return ParsedReading(
        kind=KIND_GLUCOSE,
        mmol=GLU_METER_HI if hi else GLU_METER_LO,
        context=context,  # type: ignore[arg-type]
        meter="HI" if hi else "LO",
        problem=problem,
    )


def _weight(num: str, unit: str | None, keyword: bool) -> ParsedReading | None:
    value = float(num)
    problem: str | None = None
    if unit == "jin":
        kg = value * JIN_KG
    elif unit == "lb":
        kg = value * LB_KG
    else:
        kg = value
        if unit is None and value >= WEIGHT_UNITLESS_CONFIRM_FROM:
            problem = PROBLEM_UNIT_UNCLEAR  # "体重130": kg, or 斤 (65 kg)?  Ask.
    kg = round(kg, 1)
    if not (WEIGHT_MIN_KG <= kg <= WEIGHT_MAX_KG):
        if not keyword:
            return None  # "1斤苹果" is shopping, not a weight
        problem = PROBLEM_OUT_OF_RANGE
    return ParsedReading(kind=KIND_WEIGHT, kg=kg, unit_typed=unit, problem=problem)


# ----------------------------------------------------------------------------------------------
# Clause parser
# ----------------------------------------------------------------------------------------------
_Item = tuple[int, "ParsedReading | _BP"]


class _Carry:
    """State carried from one clause to the next: "空腹血糖，6.8" names the context before the number."""

    __slots__ = ("ctx", "glu", "label")

    def __init__(self) -> None:
        self.ctx: str | None = None
        self.glu = False
        self.label: tuple[str, int] | None = None  # a lone "收缩压150" waiting for its "舒张压95"


def _parse_clause(s: str, last_bp_open: _BP | None, carry: _Carry) -> list[_Item]:
    items: list[_Item] = []
    trig = _triggered(s)
    s = _mask_noise(s, "noise_kw" in trig)

    pulses: list[tuple[int, int]] = []
    if "pulse" in trig:
        for m in _PULSE_KW_RE.finditer(s):
            pulses.append((m.start(), int(m.group(1))))
            s = _blank(s, m.start(), m.end())
    if "bpm" in s or "次" in s or "beat" in s:
        for m in _PULSE_UNIT_RE.finditer(s):
            pulses.append((m.start(), int(m.group(1))))
            s = _blank(s, m.start(), m.end())
        pulses.sort()
    if "次" in s or "遍" in s or "回" in s:
        s = _TIMES_RE.sub(_spaces, s)

    # glucose with an explicit unit (built once the context words are known)
    unit_hits: list[tuple[int, str, str]] = []
    if "mmol" in s or "mg" in s or "毫" in s:
        for m in _GLU_UNIT_RE.finditer(s):
            unit_hits.append((m.start(), m.group(1), "mmol" if m.group("mmol") else "mgdl"))
            s = _blank(s, m.start(), m.end())

    # weight
    if "weight" in trig:
        for m in _WEIGHT_KW_RE.finditer(s):
            w = _weight(m.group(1), _weight_unit(m), keyword=True)
            if w is not None:
                items.append((m.start(), w))
                s = _blank(s, m.start(), m.end())
        for m in _WEIGHT_UNIT_RE.finditer(s):
            w = _weight(m.group(1), _weight_unit(m), keyword=False)
            if w is not None:
                items.append((m.start(), w))
                s = _blank(s, m.start(), m.end())

    # blood pressure, most explicit forms first
    bps: list[tuple[int, _BP]] = []
    if "label" in trig or carry.label is not None:
        ms = _LABEL_SYS_RE.search(s)
        md = _LABEL_DIA_RE.search(s)
        if ms is not None and md is not None:
            bps.append((ms.start(), _BP(int(ms.group(1)), int(md.group(1)), None, max(ms.end(), md.end()))))
            s = _blank(_blank(s, ms.start(), ms.end()), md.start(), md.end())
        elif ms is not None or md is not None:
            # "收缩压150，舒张压95": the two halves sit in different clauses
            m1 = ms or md
            assert m1 is not None
            label = ("sys" if ms is not None else "dia", int(m1.group(1)))
            s = _blank(s, m1.start(), m1.end())
            other = carry.label
            if other is not None and other[0] != label[0]:
                sys_ = label[1] if label[0] == "sys" else other[1]
                dia = label[1] if label[0] == "dia" else other[1]
                bps.append((m1.start(), _BP(sys_, dia, None, m1.end())))
                carry.label = None
            else:
                carry.label = label
    if "over" in s or "比" in s:
        for m in _OVER_RE.finditer(s):
            bps.append((m.start(), _BP(int(m.group(1)), int(m.group(2)), None, m.end())))
            s = _blank(s, m.start(), m.end())
    if "/" in s:
        for m in _SLASH_RE.finditer(s):
            p3 = m.group(3)
            bps.append((m.start(), _BP(int(m.group(1)), int(m.group(2)), int(p3) if p3 else None, m.end())))
            s = _blank(s, m.start(), m.end())
    has_bp_kw = False
    if "bp" in trig:
        # "血压150 95": a pair needs digits; skipping it when none are left matters because its
        # \s* runs backtrack over the spaces that blanking left behind.
        if _DIGIT_RE.search(s) is not None:
            for m in _BP_KW_PAIR_RE.finditer(s):
                has_bp_kw = True
                nums = [int(g) for g in m.groups() if g is not None]
                bps.append((m.start(), _bare_bp(nums, m.end())))
                s = _blank(s, m.start(), m.end())
        s, count = _BP_KW_RE.subn(_spaces, s)
        has_bp_kw = has_bp_kw or count > 0

    # glucose context and keywords
    contexts: list[tuple[int, str]] = []
    if "ctx" in trig:
        for m in _CTX_FAST_RE.finditer(s):
            named = _CTX_NAMED_RE.match(s, m.start())
            contexts.append((m.start(), (named.lastgroup if named else None) or "random"))
        if contexts:
            s = _CTX_FAST_RE.sub(_spaces, s)
    has_glu = bool(contexts) or carry.glu
    if "glu" in trig:
        s, count = _GLU_KW_RE.subn(_spaces, s)
        has_glu = has_glu or count > 0

    for pos, text, unit in unit_hits:
        ctx = _nearest_context(contexts, pos) or carry.ctx
        items.append((pos, _glucose(text, unit, ctx, False)))

    nums_found = [(m.start(), m.group()) for m in _NUM_RE.finditer(s)]

    # a number right after a BP reading is its pulse: "150/95 72", "150/95, 72"
    if nums_found and bps:
        for _, bp in bps:
            if bp.pulse is None and nums_found:
                pos, text = nums_found[0]
                if "." not in text and len(text) in (2, 3) and not s[bp.end : pos].strip(" ,"):
                    bp.pulse = int(text)
                    nums_found.pop(0)
    # pulses given with a label go to the first BP without one (this clause, else an earlier one)
    for _, value in pulses:
        target = next((bp for _, bp in bps if bp.pulse is None), None)
        if target is None and last_bp_open is not None and last_bp_open.pulse is None:
            target = last_bp_open
        if target is not None:
            target.pulse = value
    items.extend(bps)

    if has_glu:
        ctx_default = carry.ctx
        for pos, text in nums_found:
            ctx = _nearest_context(contexts, pos) or ctx_default
            items.append((pos, _glucose(text, None, ctx, False)))
        if not nums_found and not any(
            r.kind == KIND_GLUCOSE for _, r in items if isinstance(r, ParsedReading)
        ):
            mt = _METER_TOKEN_RE.search(s)
            if mt is not None:
                ctx = _nearest_context(contexts, mt.start()) or ctx_default
                items.append((mt.start(), _meter(mt.group(), ctx, None)))
            elif not items:
                # "空腹血糖，6.8": keep the glucose context for the next clause
                carry.glu = True
                carry.ctx = contexts[-1][1] if contexts else carry.ctx
                return items
        carry.glu, carry.ctx = False, None
    elif nums_found and not items:
        ints_ok = all("." not in t and len(t) in (2, 3) for _, t in nums_found)
        if 2 <= len(nums_found) <= 3 and ints_ok and (has_bp_kw or _residual_is_filler(s)):
            last_pos, last_text = nums_found[-1]
            items.append(
                (nums_found[0][0], _bare_bp([int(t) for _, t in nums_found], last_pos + len(last_text)))
            )
        elif len(nums_found) == 1 and not has_bp_kw and _residual_is_filler(s):
            pos, text = nums_found[0]
            if "." in text:
                items.append((pos, _glucose(text, None, None, True)))
            else:
                value = int(text)
                if (
                    last_bp_open is not None
                    and last_bp_open.pulse is None
                    and len(text) in (2, 3)
                    and PULSE_MIN <= value <= PULSE_MAX
                ):
                    last_bp_open.pulse = value  # "150/95，72"
                elif GLU_BARE_MGDL_MIN <= value <= GLU_BARE_MGDL_MAX:
                    items.append((pos, _glucose(text, None, None, True)))
    if len(items) > 1:
        items.sort(key=lambda it: it[0])
    return items


def _weight_unit(m: re.Match[str]) -> str | None:
    if m.group("kg"):
        return "kg"
    if m.group("jin"):
        return "jin"
    if m.group("lb"):
        return "lb"
    return None


def _nearest_context(contexts: list[tuple[int, str]], pos: int) -> str | None:
    """The context word closest before the number, else the first one after it ("7.2 after lunch")."""
    before = None
    for cpos, name in contexts:
        if cpos < pos:
            before = name
        else:
            return before or name
    return before


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------
def parse_readings(text: str) -> list[ParsedReading]:
    """All readings in a message, in the order typed ("早上 135/85，空腹血糖 6.5" -> two).

    Never raises on any string.  Returns [] when the message holds no reading.
    """
    if not text:
        return []
    norm = _normalise(text)
    has_digits = _DIGIT_RE.search(norm) is not None
    if not has_digits:
        if _BARE_METER_RE.match(norm):
            # An uppercase "HI" alone is probably a meter screen, but could be a shouted greeting.
            return [_meter(norm.strip(" !.")[:2], None, PROBLEM_NEEDS_CONFIRMATION)]
        low = norm.lower()
        if _METER_TOKEN_RE.search(low) is None or _GLU_KW_RE.search(low) is None:
            return []
        s = low
    else:
        # The quick shapes start with a space or a digit (what \s and \d match), so a message
        # starting with a word ("血压...", "BP ...") does not pay for trying them.
        first = norm[0]
        if first.isdecimal() or first.isspace():
            quick = _QUICK_SLASH_RE.fullmatch(norm)
            if quick is not None and int(quick.group(1)) > 31:  # "12/25" is a date: general path
                p3 = quick.group(3)
                return [_bp_reading(int(quick.group(1)), int(quick.group(2)), int(p3) if p3 else None)]
            quick = _QUICK_NUM_RE.fullmatch(norm)
            if quick is not None:
                text = quick.group(1)
                if "." in text or GLU_BARE_MGDL_MIN <= int(text) <= GLU_BARE_MGDL_MAX:
                    return [_glucose(text, None, None, True)]
                return []
        s = norm.lower()
        if "," in s:
            s = _DEC_COMMA_RE.sub(r"\1.\2", s)
        quick_reading = _keyword_shortcut(s)
        if quick_reading is not None:
            return [quick_reading]
    return _parse_clauses(s, has_digits)


def _keyword_shortcut(s: str) -> ParsedReading | None:
    """The reading of a lower-cased message of one of the commonest keyword shapes, else None."""
    # Cheap necessary conditions first, so that other messages pay little for the shortcuts: every
    # shape ends with a number, "mmol", "mmol/l" or "mg/dl"; only the BP shape has a "/" (besides
    # mg/dl); both label words contain 压.
    tail = s.rstrip(" ")[-1:]
    if not (tail.isdecimal() or tail == "l"):
        return None
    m = None
    if "/" in s:
        m = _QUICK_BP_KW_RE.fullmatch(s)
    elif "压" in s:
        m = _QUICK_LABELS_RE.fullmatch(s)
    if m is not None:
        pulse = m.group(3)
        return _bp_reading(int(m.group(1)), int(m.group(2)), int(pulse) if pulse else None)
    m = _QUICK_GLU_RE.fullmatch(s)
    if m is not None:
        ctx, keyword, number, mmol, mgdl = m.groups()
        unit = "mmol" if mmol else "mgdl" if mgdl else None
        if ctx or keyword or unit:  # a bare number is _QUICK_NUM_RE's case
            return _glucose(number, unit, _QUICK_CONTEXT[ctx] if ctx else None, False)
    return None


def _parse_clauses(s: str, has_digits: bool) -> list[ParsedReading]:
    """The general parser: split into clauses, find the readings of each."""
    out: list[ParsedReading | _BP] = []
    carry = _Carry()
    last_bp_open: _BP | None = None
    clauses = _SPLIT_RE.split(s)
    # One clause (the usual message) is the whole text, whose digits were looked for above
    # (lower() and the decimal comma neither add nor remove digits).
    known_digits = has_digits and len(clauses) == 1
    for clause in clauses:
        if not clause or clause.isspace():
            continue
        if (
            not known_digits
            and _DIGIT_RE.search(clause) is None
            and not (_triggered(clause) & _CARRY_TRIGGERS)
        ):
            continue  # "good morning": nothing to find, nothing to carry to the next clause
        for _, item in _parse_clause(clause, last_bp_open, carry):
            out.append(item)
        last = out[-1] if out else None
        last_bp_open = last if isinstance(last, _BP) else None
    return [it.build() if isinstance(it, _BP) else it for it in out]


def parse_reading(text: str) -> ParsedReading | None:
    """The first reading in ``text``, or None when there is none (greetings, dates, chatter)."""
    readings = parse_readings(text)
    return readings[0] if readings else None


# ----------------------------------------------------------------------------------------------
# When was it measured?
# ----------------------------------------------------------------------------------------------
_CN_HOUR = {
    "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
    "十": 10, "十一": 11, "十二": 12,
}  # fmt: skip
_DAY_RE = re.compile(
    r"(?P<d2>前天|day\s+before\s+yesterday)|(?P<yn>昨晚|昨夜|last\s+night)|(?P<d1>昨天|昨日|yesterday)"
    r"|(?P<d0>今天|今日|今早|今晨|今晚|today|this\s+(?:morning|afternoon|evening)|tonight)"
)
_PART_RE = re.compile(
    r"(?P<morning>早上|早晨|清晨|上午|今早|今晨|morning|起床后?)|(?P<noon>中午|noon|lunchtime)"
    r"|(?P<afternoon>下午|afternoon)|(?P<evening>傍晚|晚上|今晚|昨晚|evening|tonight|last\s+night)"
    r"|(?P<night>夜里|半夜|夜间|(?<![a-z])night(?![a-z]))"
)
_CLOCK_RE = re.compile(
    r"(?<![\d./])(?P<h>\d{1,2})\s*:\s*(?P<m>\d{2})(?!\d)\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?"
    r"|(?<![\d./])(?P<h2>\d{1,2})\s*(?P<ap2>am|pm|a\.m\.|p\.m\.)(?![a-z])"
    r"|(?P<h3>\d{1,2}|十[一二]?|[一二两三四五六七八九十])\s*[点點](?:(?P<half>半)|(?P<m3>[0-5]?\d)(?:分|(?![\d./])))?"
    r"|(?<![a-z])at\s+(?P<h4>\d{1,2})(?![\d./:])\s*(?P<ap4>am|pm|a\.m\.|p\.m\.)?"
)
_PART_HOUR = {"morning": 7, "noon": 12, "afternoon": 15, "evening": 20, "night": 22}


def parse_when(text: str, now: datetime) -> datetime | None:
    """When the reading in ``text`` was taken, if the message says so ("昨晚 145/90", "at 7:30").

    Returns a datetime with ``now``'s tzinfo, never later than ``now``; None when there is no hint
    (then "now" is meant).  Part-of-day words map to typical measurement times (morning 07:00,
    noon 12:00, afternoon 15:00, evening 20:00, night 22:00).  A clock time later than now without a
    day word ("at 22:00" sent at 08:00) means yesterday.
    """
    if not text:
        return None
    s = _normalise(text).lower()
    day_offset: int | None = None
    part: str | None = None
    md = _DAY_RE.search(s)
    if md is not None:
        group = md.lastgroup
        day_offset = {"d2": 2, "yn": 1, "d1": 1, "d0": 0}[group or "d0"]
        if group == "yn":
            part = "evening"
    mp = _PART_RE.search(s)
    if mp is not None and part is None:
        part = mp.lastgroup
    hour: int | None = None
    minute = 0
    mc = _CLOCK_RE.search(s)
    if mc is not None:
        ap: str | None = None
        if mc.group("h") is not None:
            hour, minute, ap = int(mc.group("h")), int(mc.group("m")), mc.group("ap")
        elif mc.group("h2") is not None:
            hour, ap = int(mc.group("h2")), mc.group("ap2")
        elif mc.group("h3") is not None:
            h3 = mc.group("h3")
            hour = int(h3) if h3.isdigit() else _CN_HOUR.get(h3)
            minute = 30 if mc.group("half") else int(mc.group("m3") or 0)
        else:
            hour, ap = int(mc.group("h4")), mc.group("ap4")
        if hour is None or hour > 23 or minute > 59:
            hour, minute = None, 0
        elif ap is not None:
            if ap.startswith("p") and hour < 12:
                hour += 12
            elif ap.startswith("a") and hour == 12:
                hour = 0
        elif hour < 12 and part in ("afternoon", "evening", "night"):
            hour += 12  # "晚上8点" = 20:00
        elif hour < 6 and part == "noon":
            hour += 12  # "中午1点" = 13:00
    if day_offset is None and part is None and hour is None:
        return None
    if hour is None:
        if part is None:
            base = now  # "yesterday 145/90": same time of day, one day back
        else:
            base = now.replace(hour=_PART_HOUR[part], minute=0, second=0, microsecond=0)
    else:
        base = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    result = base - timedelta(days=day_offset or 0)
    if result > now:
        if day_offset is None and hour is not None:
            result -= timedelta(days=1)
        if result > now:
            result = now
    return result
