"""/tools: household salt and oil calculators, BMI and waist check, exercise planner.

Each tool is a few short questions (a ConversationHandler, states below). /cancel always stops;
a number that does not make sense gets a kind re-ask. A text that is really a reading ("150/95")
is never swallowed: the tool stops and the reading is handled as usual. Menu buttons pass through.
Nothing here is stored except a height the profile did not have yet (used for BMI tips).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import clinical
from bot.clinical.activity import EXERCISE_KINDS, central_obesity, exercise_plan, waist_limit
from bot.clinical.exercise import (
    REASON_BP_TOO_HIGH,
    REASON_EAT_CARBS_FIRST,
    REASON_GLUCOSE_TOO_HIGH,
    REASON_GLUCOSE_TOO_LOW,
)
from content.catalog import household_oil, household_salt
from content.i18n import translator
from dialogs import readings
from dialogs.common import MENU, Who, _, answer, inline, reply, who

(HH_PEOPLE, HH_GRAMS, HH_DAYS, BMI_HEIGHT, BMI_WEIGHT, BMI_WAIST, BMI_SEX, EX_KIND, EX_MINUTES) = range(9)
KEY = "tool"
FULLWIDTH = str.maketrans("０１２３４５６７８９．，", "0123456789.,")
NUMBER = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*([a-zA-Z\u4e00-\u9fff]{0,4})\s*$")

KIND_LABELS = {
    "walk": _("🚶 Brisk walking"),
    "taichi": _("🧘 Tai chi or square dancing"),
    "cycle_swim": _("🚲 Cycling or swimming"),
    "strength": _("💪 Strength exercises"),
}
# (question, re-ask, lowest, highest, whole numbers only) for each number the tools ask
ASKS = {
    HH_PEOPLE: (_("How many people eat at home?"), _("Please type the number of people, like 3."), 1, 30, True),
    HH_GRAMS: (_("How many grams did you buy? (a usual bag of salt is 400 or 500 g; a bottle of oil is "
                 "often 5 L, about 4500 g)"), _("Please type the grams as a number, like 500."), 1, 50_000, False),
    HH_DAYS: (_("How many days did it last?"), _("Please type the number of days, like 30."), 1, 1000, True),
    BMI_HEIGHT: (_("Your height in cm?"), _("Please type your height in cm, like 165."), 100, 230, False),
    BMI_WEIGHT: (_("Your weight in kg?"), _("Please type your weight in kg, like 68.5."), 20, 300, False),
    BMI_WAIST: (_("Your waist in cm? Measure round your belly at the level of the navel, breathing out gently."),
                _("Please type your waist in cm, like 88."), 40, 200, False),
    EX_MINUTES: (_("How many minutes at a time can you do it?"),
                 _("Please type the minutes as a number, like 30."), 1, 180, True),
}


def _menu_texts() -> re.Pattern[str]:
    texts = {translator(lang)(label) for lang in ("en", "zh_CN") for row in MENU for _cmd, label in row}
    return re.compile("^(" + "|".join(re.escape(x) for x in sorted(texts)) + ")$")


def _number(text: str, low: float, high: float, whole: bool) -> float | None:
    match = NUMBER.match(text.translate(FULLWIDTH))
    if match is None:
        return None
    value = float(match[1].replace(",", "."))
    if not low <= value <= high or (whole and value != int(value)):
        return None
    return value


async def _ask(update: Update, w: Who, state: int, intro: str = "") -> int:
    question = ASKS[state][0]
    await reply(update, (intro + "\n" if intro else "") + w.t(question))
    return state


async def _read(update: Update, context: ContextTypes.DEFAULT_TYPE, state: int) -> tuple[Who, float | None, int]:
    """The number typed for `state`; on a bad one re-asks kindly. Returns (who, value, state to stay in)."""
    w = await who(update, context)
    text = update.effective_message.text if update.effective_message else ""
    _question, again, low, high, whole = ASKS[state]
    value = _number(text or "", low, high, whole)
    if value is None:
        if clinical.parse_reading(text or "") is not None and NUMBER.match((text or "").translate(FULLWIDTH)) is None:
            context.user_data.pop(KEY, None)  # type: ignore[union-attr]
            await readings.on_text(update, context)  # a reading typed mid-tool: handle it, stop the tool
            return w, None, ConversationHandler.END
        await reply(update, w.t(again) + " " + w.t("Or press /cancel to stop."))
    return w, value, state


def _data(context: ContextTypes.DEFAULT_TYPE) -> dict[str, float | str]:
    return context.user_data.setdefault(KEY, {})  # type: ignore[union-attr]


# --- menu ---------------------------------------------------------------------------------------
async def tools_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    t = w.t
    context.user_data.pop(KEY, None)  # type: ignore[union-attr]
    await reply(update, t("Which tool?"), reply_markup=inline([
        [(t("🧂 Salt calculator"), "tl:salt"), (t("🫒 Oil calculator"), "tl:oil")],
        [(t("📏 BMI and waist"), "tl:bmi"), (t("🏃 Exercise plan"), "tl:ex")],
    ]))
    return ConversationHandler.END


async def pick_tool(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    await answer(update)
    tool = (update.callback_query.data or "").split(":")[1]  # type: ignore[union-attr]
    context.user_data[KEY] = {"tool": tool}  # type: ignore[index]
    if tool in ("salt", "oil"):
        intro = w.t("Let's work out how much salt each person eats a day.") if tool == "salt" else \
            w.t("Let's work out how much cooking oil each person eats a day.")
        return await _ask(update, w, HH_PEOPLE, intro)
    if tool == "bmi":
        return await _ask(update, w, BMI_HEIGHT)
    return await exercise_start(update, w)


# --- salt and oil -------------------------------------------------------------------------------
def _step(state: int, key: str, next_state: int) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[int]]:
    """A question whose answer is only kept for a later step: read it, store it, ask the next one."""
    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        w, value, current = await _read(update, context, state)
        if value is None:
            return current
        _data(context)[key] = value
        return await _ask(update, w, next_state)
    return handler


hh_people = _step(HH_PEOPLE, "people", HH_GRAMS)
hh_grams = _step(HH_GRAMS, "grams", HH_DAYS)


async def hh_days(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w, value, state = await _read(update, context, HH_DAYS)
    if value is None:
        return state
    data = context.user_data.pop(KEY, {})  # type: ignore[union-attr]
    if "people" not in data or "grams" not in data:
        return ConversationHandler.END
    t = w.t
    people, grams, days = int(data["people"]), float(data["grams"]), int(value)
    if data.get("tool") == "oil":
        oil = household_oil(people, grams, days)
        lines = [t("{amount} g of oil per person per day; the guideline says 25 to 30 g (CDG-2022).",
                   amount=f"{oil.per_person_g:.1f}")]
        lines.append(t("That is more than the guideline. Measure oil with a spoon instead of pouring from the "
                       "bottle, and steam, boil or stew more often than frying.") if oil.above_limit else
                     t("Well done, that is within the guideline."))
    else:
        salt = household_salt(people, grams, days)
        lines = [t("{amount} g per person per day; the guideline says under 5 g (CDG-2022).",
                   amount=f"{salt.per_person_g:.1f}")]
        lines.append(t("That is more than the guideline. A 2 g salt spoon helps: at most two and a half level "
                       "spoons per person a day. Soy sauce and pickles count too.") if salt.above_limit else
                     t("Well done, that is within the guideline. Remember soy sauce and pickles count too."))
    await reply(update, "\n".join(lines))
    return ConversationHandler.END


# --- BMI and waist --------------------------------------------------------------------------------
bmi_height = _step(BMI_HEIGHT, "height", BMI_WEIGHT)
bmi_weight = _step(BMI_WEIGHT, "weight", BMI_WAIST)


async def bmi_waist(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w, value, state = await _read(update, context, BMI_WAIST)
    if value is None:
        return state
    _data(context)["waist"] = value
    t = w.t
    await reply(update, t("Are you a man or a woman? (the waist limit differs)"),
                reply_markup=inline([[(t("Man"), "tl:sex:m"), (t("Woman"), "tl:sex:f")]]))
    return BMI_SEX


async def bmi_sex(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    await answer(update)
    sex = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    data = context.user_data.pop(KEY, {})  # type: ignore[union-attr]
    if sex not in ("m", "f") or not {"height", "weight", "waist"} <= set(data):
        await reply(update, w.t("This button has expired."))
        return ConversationHandler.END
    t = w.t
    height, weight, waist = float(data["height"]), float(data["weight"]), float(data["waist"])
    bmi = clinical.bmi(weight, height)
    category = clinical.bmi_category(bmi)
    category_texts = {
        "underweight": _("below the healthy range"),
        "normal": _("in the healthy range"),
        "overweight": _("in the overweight range"),
        "obese": _("in the obesity range"),
    }
    category_label = category_texts[category]
    lines = [t("BMI {bmi:.1f}: {category} for Chinese adults (healthy: 18.5 to 23.9).", bmi=bmi,
               category=t(category_label))]
    limit = f"{waist_limit(sex):.0f}"
    if central_obesity(waist, sex):
        lines.append(t("Waist {waist} cm: at or above {limit} cm, which counts as central obesity (belly fat) "
                       "for Chinese adults (WS/T 428-2013). It raises blood pressure and glucose; your family "
                       "doctor can help you plan food and exercise.", waist=f"{waist:g}", limit=limit))
    else:
        lines.append(t("Waist {waist} cm: below the {limit} cm limit for Chinese adults (WS/T 428-2013). Good.",
                       waist=f"{waist:g}", limit=limit))
    if category in ("overweight", "obese"):
        lines.append(t("Losing even 5 percent of your weight helps blood pressure and glucose."))
    profile = await w.profile()
    if profile is not None and not profile.height_cm:
        await w.services.users.update_profile(w.user.id, height_cm=height)
    await reply(update, "\n".join(lines))
    return ConversationHandler.END


# --- exercise planner ---------------------------------------------------------------------------
async def exercise_start(update: Update, w: Who) -> int:
    t = w.t
    check = await w.services.tips.exercise_check(w.user.id)
    if not check.ok:
        lines = ["⚠️ " + t("Please do not start exercise now.")]
        if REASON_BP_TOO_HIGH in check.safety.reasons and check.last_bp:
            lines.append(t("Your last blood pressure was {bp}, which is 180/110 or higher.",
                           bp=f"{check.last_bp[0]}/{check.last_bp[1]}"))
        if REASON_GLUCOSE_TOO_HIGH in check.safety.reasons:
            lines.append(t("Your last glucose was above 16.7 mmol/L."))
        if REASON_GLUCOSE_TOO_LOW in check.safety.reasons:
            lines.append(t("Your last glucose was low. Take 15 g of fast sugar and measure again in 15 minutes."))
        lines.append(t("Rest, measure again later, and contact your doctor. If you have chest pain, a severe "
                       "headache, blurred vision or trouble breathing, call 120 or go to hospital now."))
        await reply(update, "\n".join(lines))
        return ConversationHandler.END
    rows = [[(t(KIND_LABELS[kind]), f"tl:kind:{kind}")] for kind in EXERCISE_KINDS]
    await reply(update, t("What would you like to do?"), reply_markup=inline(rows))
    return EX_KIND


async def ex_kind(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    await answer(update)
    kind = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    if kind not in EXERCISE_KINDS:
        return EX_KIND
    _data(context)["kind"] = kind
    return await _ask(update, w, EX_MINUTES)


async def ex_minutes(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w, value, state = await _read(update, context, EX_MINUTES)
    if value is None:
        return state
    data = context.user_data.pop(KEY, {})  # type: ignore[union-attr]
    kind = str(data.get("kind", "walk"))
    check = await w.services.tips.exercise_check(w.user.id)
    t = w.t
    plan = exercise_plan(kind, int(value), check.age)
    kind_label = KIND_LABELS[kind]
    lines = [t("Your plan: {kind}, {minutes} minutes, {times} times a week = {total} minutes.",
               kind=t(kind_label), minutes=plan.minutes, times=plan.sessions_per_week, total=plan.weekly_minutes)]
    if not plan.aerobic:
        lines.append(t("Add walking or another moderate activity on the other days."))
    elif not plan.reaches_weekly_goal:
        lines.append(t("That is a good start. Add a few minutes each week until you reach 150 minutes."))
    lines.append(t("The guideline: at least 150 minutes of moderate activity a week, about 6000 steps a day, and "
                   "strength exercises on {low} to {high} days a week (CDG-2022, CPAG-2021).",
                   low=plan.resistance_days[0], high=plan.resistance_days[1]))
    if plan.heart_rate_low and plan.heart_rate_high:
        lines.append(t("Moderate means breathing faster but still able to talk; for your age a pulse of about "
                       "{low} to {high} per minute.", low=plan.heart_rate_low, high=plan.heart_rate_high))
    else:
        lines.append(t("Moderate means breathing faster but still able to talk."))
    if plan.short_sessions:
        lines.append(t("Short sessions are fine to start with; build up slowly."))
    if plan.older_adult:
        lines.append(t("Start gently, and add balance exercises such as standing on one leg holding a chair."))
    if REASON_EAT_CARBS_FIRST in check.safety.reasons:
        lines.append(t("Your last glucose was below 5.6 mmol/L: eat some carbohydrate, like a slice of bread, "
                       "before exercise."))
    lines.append(t("Stop and rest if you feel chest pain, dizziness or very short of breath."))
    await reply(update, "\n".join(lines))
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    await answer(update)
    context.user_data.pop(KEY, None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was saved."))
    return ConversationHandler.END


def handlers() -> list[object]:
    text = filters.TEXT & ~filters.COMMAND & ~filters.Regex(_menu_texts())
    return [
        ConversationHandler(
            entry_points=[
                CommandHandler("tools", tools_command),
                CallbackQueryHandler(pick_tool, pattern=r"^tl:(salt|oil|bmi|ex)$"),
            ],
            states={
                HH_PEOPLE: [MessageHandler(text, hh_people)],
                HH_GRAMS: [MessageHandler(text, hh_grams)],
                HH_DAYS: [MessageHandler(text, hh_days)],
                BMI_HEIGHT: [MessageHandler(text, bmi_height)],
                BMI_WEIGHT: [MessageHandler(text, bmi_weight)],
                BMI_WAIST: [MessageHandler(text, bmi_waist)],
                BMI_SEX: [CallbackQueryHandler(bmi_sex, pattern=r"^tl:sex:")],
                EX_KIND: [CallbackQueryHandler(ex_kind, pattern=r"^tl:kind:")],
                EX_MINUTES: [MessageHandler(text, ex_minutes)],
            },
            fallbacks=[CommandHandler("cancel", cancel)],
            name="tools",
            persistent=True,
            allow_reentry=True,
        )
    ]
