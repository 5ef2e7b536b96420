"""Citable sources for everything people read in CareCircle.

Every tip, lesson and quiz question names one or more ids from :data:`SOURCES` (a published
guideline) or :data:`REFERENCE_ROWS` (a row of ``../shared/clinical-reference.md``, which in turn
names its published source).  ``content.catalog.load_catalog`` rejects any other id.
"""

from __future__ import annotations

SOURCES: dict[str, str] = {
    "NBPHS-3": (
        "National Health and Family Planning Commission. National Basic Public Health Service Standards, "
        "3rd edition (国家基本公共卫生服务规范（第三版）), 2017: health management of patients with "
        "hypertension and of patients with type 2 diabetes (follow-up, urgent referral)."
    ),
    "CHN-HTN-2018": (
        "Joint Committee for Guideline Revision. 2018 Chinese Guidelines for Prevention and Treatment of "
        "Hypertension (中国高血压防治指南 2018年修订版). Chin J Cardiovasc Med 2019;24(1):24-56."
    ),
    "CHN-HTN-PC-2019": (
        "Chinese Medical Association et al. Guideline for primary care of hypertension (2019) "
        "(高血压基层诊疗指南（2019年）). Chin J Gen Pract 2019;18(4):301-313."
    ),
    "CDS-2020": (
        "Chinese Diabetes Society. Guideline for the prevention and treatment of type 2 diabetes mellitus "
        "in China, 2020 edition (中国2型糖尿病防治指南（2020年版）). Chin J Diabetes Mellit 2021;13(4):315-409."
    ),
    "ADA-6": (
        "American Diabetes Association Professional Practice Committee. Standards of Care in Diabetes, "
        "Section 6: Glycemic Goals and Hypoglycemia. Diabetes Care (current edition), Suppl 1."
    ),
    "ACC-AHA-2017": (
        "Whelton PK, Carey RM, et al. 2017 ACC/AHA/AAPA/ABC/ACPM/AGS/APhA/ASH/ASPC/NMA/PCNA Guideline for "
        "the Prevention, Detection, Evaluation, and Management of High Blood Pressure in Adults. "
        "Hypertension 2018;71:e13-e115."
    ),
    "WHO-2021": (
        "World Health Organization. Guideline for the pharmacological treatment of hypertension in adults. "
        "Geneva: WHO, 2021; and the WHO HEARTS technical package."
    ),
    "CDG-2022": (
        "Chinese Nutrition Society. Dietary Guidelines for Chinese Residents 2022 (中国居民膳食指南（2022）). "
        "Beijing: People's Medical Publishing House, 2022."
    ),
    "CPAG-2021": (
        "Physical Activity Guidelines for Chinese (2021) (中国人群身体活动指南（2021）) writing group. "
        "Chin J Epidemiol 2022;43(1):5-6; Chin J Public Health 2022;38(2):129-130."
    ),
    "CN-INSULIN-INJ-2016": (
        "Chinese Diabetes Society. Chinese guideline for diabetes drug injection technique, 2016 edition "
        "(中国糖尿病药物注射技术指南（2016年版）). Chin J Diabetes Mellit 2017;9(2):79-105."
    ),
}

#: Rows of ``../shared/clinical-reference.md`` that content may cite directly.  Each row maps to a short
#: description and the published sources the row itself cites.  Values marked (verify) in the reference
#: stay configurable in code; content citing them words them as general guidance.
REFERENCE_ROWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BP-GRADE": ("Clinical reference BP-GRADE: blood-pressure grades", ("CHN-HTN-2018",)),
    "BP-HOME": (
        "Clinical reference BP-HOME: home BP average >= 135/85 over 5-7 days is high",
        ("CHN-HTN-2018",),
    ),
    "BP-TARGET": (
        "Clinical reference BP-TARGET: controlled < 140/90 (>= 65 y: < 150/90)",
        ("NBPHS-3", "WHO-2021"),
    ),
    "BP-URGENT": ("Clinical reference BP-URGENT: SBP >= 180 and/or DBP >= 110 is urgent", ("NBPHS-3",)),
    "BP-DANGER": ("Clinical reference BP-DANGER: danger signs that make any reading urgent", ("NBPHS-3",)),
    "GLU-CONTEXT": (
        "Clinical reference GLU-CONTEXT: every glucose reading has a context",
        ("NBPHS-3", "CDS-2020"),
    ),
    "GLU-TARGET": (
        "Clinical reference GLU-TARGET: fasting 4.4-7.0, 2 h after meal < 10.0 mmol/L",
        ("CDS-2020",),
    ),
    "GLU-HYPO": (
        "Clinical reference GLU-HYPO: < 3.9 level 1, < 3.0 level 2, 15-15 rule",
        ("ADA-6", "CDS-2020"),
    ),
    "GLU-URGENT": ("Clinical reference GLU-URGENT: >= 16.7 or <= 3.9 mmol/L is urgent", ("NBPHS-3",)),
    "GLU-DANGER": ("Clinical reference GLU-DANGER: danger signs with high glucose", ("NBPHS-3",)),
    "EX-SAFETY": (
        "Clinical reference 'Exercise and diet' (exercise safety): no moderate exercise at rest BP >= 180/110 "
        "or glucose > 16.7 mmol/L; glucose < 5.6 mmol/L before exercise: take carbohydrate first (verify)",
        ("CDS-2020", "ADA-6"),
    ),
    "DIET-CDG": ("Clinical reference 'Exercise and diet': CDG-2022 amounts", ("CDG-2022",)),
}


def is_known(source_id: str) -> bool:
    """True when ``source_id`` is a published source or a clinical-reference row."""
    return source_id in SOURCES or source_id in REFERENCE_ROWS


def citation(source_id: str) -> str:
    """Full citation text for a source id or clinical-reference row id (KeyError if unknown)."""
    if source_id in SOURCES:
        return SOURCES[source_id]
    description, underlying = REFERENCE_ROWS[source_id]
    return description + " — " + "; ".join(SOURCES[s] for s in underlying)
