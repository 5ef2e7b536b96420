"""Every clinical number the bot uses, in one place.

Why one module: the clinical reference (``shared/clinical-reference.md``) marks several values
*(verify)*; when a doctor or a newer guideline changes one, it must change here and nowhere else.
Each constant names the reference row it implements (``# clinical-reference: ROW-ID``), so a reviewer
can check code against the table line by line.  Values that a doctor may change for one patient are
not constants at all: they live in :class:`bot.clinical.assessment.Targets` and only their *defaults*
come from here.

Units: blood pressure in mmHg, glucose in mmol/L, weight in kg, days for schedules.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Blood pressure — plausibility of a typed reading
# ---------------------------------------------------------------------------------------------
# clinical-reference: BP-RANGE (reject outside these; values are inclusive limits of what we keep)
SBP_MIN = 60
SBP_MAX = 300
DBP_MIN = 30
DBP_MAX = 200
PULSE_MIN = 25
PULSE_MAX = 250
# clinical-reference: BP-RANGE (ask the user to confirm before storing)
SBP_CONFIRM_FROM = 250  # 250..300 inclusive
PULSE_CONFIRM_BELOW = 40
PULSE_CONFIRM_ABOVE = 150

# ---------------------------------------------------------------------------------------------
# Blood pressure — classification
# ---------------------------------------------------------------------------------------------
# clinical-reference: BP-GRADE  lower edges of high-normal, grade 1, grade 2, grade 3
SBP_GRADE_EDGES = (120, 140, 160, 180)
DBP_GRADE_EDGES = (80, 90, 100, 110)
# clinical-reference: BP-GRADE  isolated systolic: SBP >= 140 and DBP < 90
ISOLATED_SYSTOLIC_SBP = 140
ISOLATED_SYSTOLIC_DBP = 90
# clinical-reference: BP-HOME  (verify) home average >= 135/85 over 5-7 days counts as high
HOME_BP_HIGH_SBP = 135
HOME_BP_HIGH_DBP = 85
# clinical-reference: BP-TARGET  controlled < 140/90; age >= 65: < 150/90 acceptable
BP_TARGET_SBP = 140
BP_TARGET_DBP = 90
ELDERLY_AGE = 65
BP_TARGET_SBP_ELDERLY = 150
BP_TARGET_DBP_ELDERLY = 90
# clinical-reference: BP-URGENT  SBP >= 180 and/or DBP >= 110
BP_URGENT_SBP = 180
BP_URGENT_DBP = 110
# clinical-reference: BP-LOW  (verify) SBP < 90 (alert only with dizziness / fainting)
BP_LOW_SBP = 90

# ---------------------------------------------------------------------------------------------
# Glucose
# ---------------------------------------------------------------------------------------------
# clinical-reference: GLU (header)  mg/dL = mmol/L x 18.0
MGDL_PER_MMOL = 18.0
# clinical-reference: GLU-RANGE  reject < 1.0 or > 40 mmol/L
GLU_MIN = 1.0
GLU_MAX = 40.0
# clinical-reference: GLU-RANGE  a bare number > 40 is probably mg/dL -> ask to confirm the unit.
# Design choice: a bare integer in 40..600 with no other words is read as mg/dL (600 mg/dL is about
# the top of a home meter); outside that band a lone number is not taken as a reading at all.
GLU_BARE_MGDL_MIN = 40
GLU_BARE_MGDL_MAX = 600
# clinical-reference: GLU-RANGE  meter screens: HI = above ~33.3, LO = below ~1.1; stored as these values
GLU_METER_HI = 33.3
GLU_METER_LO = 1.1
# clinical-reference: GLU-TARGET  fasting / before meal 4.4-7.0 (inclusive); 2 h after meal / random < 10.0
GLU_FASTING_LOW = 4.4
GLU_FASTING_HIGH = 7.0
GLU_POSTMEAL_HIGH = 10.0
# clinical-reference: GLU-TARGET  HbA1c < 7.0 %; relaxed 7-8 % for elderly/frail (set by the doctor)
HBA1C_TARGET = 7.0
HBA1C_TARGET_RELAXED = 8.0
# clinical-reference: GLU-HYPO  < 3.9 level 1, < 3.0 level 2
GLU_HYPO_L1 = 3.9
GLU_HYPO_L2 = 3.0
# clinical-reference: GLU-URGENT  >= 16.7 or <= 3.9 (note: "<= 3.9" while GLU-HYPO level 1 is "< 3.9";
# both implemented exactly as written, so 3.9 itself is urgent but not hypoglycaemia)
GLU_URGENT_HIGH = 16.7
GLU_URGENT_LOW = 3.9
# clinical-reference: GLU-UNCONTROLLED  fasting >= 7.0 at a follow-up counts as uncontrolled
GLU_UNCONTROLLED_FASTING = 7.0

# ---------------------------------------------------------------------------------------------
# Weight
# ---------------------------------------------------------------------------------------------
# Design choice (not in the reference): an adult weight outside 20..300 kg is a typo.
WEIGHT_MIN_KG = 20.0
WEIGHT_MAX_KG = 300.0
# A unit-less weight this heavy may be jin (斤) or pounds: ask which.
WEIGHT_UNITLESS_CONFIRM_FROM = 100.0
JIN_KG = 0.5  # 1 市斤 = 0.5 kg (legal definition)
LB_KG = 0.45359237
# clinical-reference: BMI-CN  — NOT in the reference file yet; source: WS/T 428-2013 (成人体重判定),
# Chinese adult cut-offs: < 18.5 underweight, 18.5-23.9 normal, 24-27.9 overweight, >= 28 obese.
BMI_UNDERWEIGHT_BELOW = 18.5
BMI_OVERWEIGHT_FROM = 24.0
BMI_OBESE_FROM = 28.0

# ---------------------------------------------------------------------------------------------
# Exercise
# ---------------------------------------------------------------------------------------------
# clinical-reference: Exercise and diet  (verify, configurable) do not start moderate exercise when
# resting BP >= 180/110 or glucose > 16.7; glucose < 5.6 before exercise -> take carbohydrate first.
EXERCISE_MAX_SBP = 180
EXERCISE_MAX_DBP = 110
EXERCISE_MAX_GLUCOSE = 16.7  # strictly above this: no exercise
EXERCISE_CARBS_BELOW_GLUCOSE = 5.6
# Design choice (extends the reference): at or below the GLU-URGENT low edge the hypoglycaemia must be
# treated first; exercising would push glucose lower still.
EXERCISE_MIN_GLUCOSE = GLU_URGENT_LOW

# ---------------------------------------------------------------------------------------------
# Follow-up (随访)
# ---------------------------------------------------------------------------------------------
# clinical-reference: Follow-up rules  at least 4 a year (quarterly) for standard, monthly for high risk
FOLLOWUP_STANDARD_DAYS = 90
FOLLOWUP_HIGH_RISK_DAYS = 30
# clinical-reference: Follow-up rules / BP-UNCONTROLLED  after an urgent referral or an uncontrolled
# follow-up: again within 2 weeks
FOLLOWUP_RECHECK_DAYS = 14
# clinical-reference: BP-UNCONTROLLED / GLU-UNCONTROLLED  2 consecutive uncontrolled follow-ups -> refer
REFERRAL_CONSECUTIVE_UNCONTROLLED = 2
# Design choice (NBPHS-3 practice, "失访"): no contact for 12 months = lost to follow-up
LOST_TO_FOLLOWUP_DAYS = 365

# ---------------------------------------------------------------------------------------------
# Panel indicators (dashboard): targets the reference's seeds set; the lower edge of each range
# ---------------------------------------------------------------------------------------------
# clinical-reference: Panel indicators  standardized management rate >= 75-80 %
INDICATOR_TARGET_STANDARDIZED = 0.75
# clinical-reference: Panel indicators  BP control rate >= 50-55 %
INDICATOR_TARGET_BP_CONTROL = 0.50
# clinical-reference: Panel indicators  glucose control rate >= 35-40 %
INDICATOR_TARGET_GLUCOSE_CONTROL = 0.35
# clinical-reference: Panel indicators  medication adherence (服药率) >= 70-75 %
INDICATOR_TARGET_ADHERENCE = 0.70
# Design choice (task brief, no reference row yet): knowledge rate >= 80 % of patients scoring >= 80 %
INDICATOR_TARGET_KNOWLEDGE = 0.80
INDICATOR_KNOWLEDGE_PASS = 0.80
# clinical-reference: Panel indicators  "registered > 3 months" and "last reading in the last 3 months"
INDICATOR_CONTROL_WINDOW_DAYS = 90

# ---------------------------------------------------------------------------------------------
# Waist and activity plan (tools)
# ---------------------------------------------------------------------------------------------
# clinical-reference: WAIST-CN  — NOT in the reference file yet; source: WS/T 428-2013 (成人体重判定):
# waist >= 90 cm (men) / >= 85 cm (women) is central obesity for Chinese adults.
WAIST_CENTRAL_OBESITY_MEN_CM = 90.0
WAIST_CENTRAL_OBESITY_WOMEN_CM = 85.0
# clinical-reference: Exercise and diet  (CDG-2022 / CPAG-2021) >= 150 min moderate activity a week,
# 6000 steps a day, resistance exercise 2-3 days a week.
ACTIVITY_WEEKLY_MINUTES = 150
ACTIVITY_DAILY_STEPS = 6000
RESISTANCE_DAYS_MIN = 2
RESISTANCE_DAYS_MAX = 3
# Design choice, NOT in the reference yet (CHN-HTN-2018 text, verify): moderate intensity = 60-70 % of the
# maximum heart rate, maximum = 220 - age.
HEART_RATE_MAX_BASE = 220
MODERATE_HR_LOW_SHARE = 0.60
MODERATE_HR_HIGH_SHARE = 0.70
