"""Peer-support circles in each member's private chat: join by link (alias + rules), /circle,
/leave, circle mode (free text and media go to the circle), moderation, sessions, challenges.

Thin: every decision is in bot.services.circles and bot.clinical.moderation. In circle mode a
text holding an urgent reading or a danger sign is NOT relayed: the member gets the safety answer
privately and their doctor is alerted through the usual alert path.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.clinical import moderation
from bot.services.circles import CHALLENGE_KINDS, CHALLENGE_LABELS, RULES, Outcome, RelayInput, clean_alias
from content.i18n import translator
from dialogs import basics, readings
from dialogs.common import Who, _, answer, inline, reply, services_of, who, with_cached_sender

TOPIC_WORDS = {"hypertension": "hypertension", "htn": "hypertension", "高血压": "hypertension",
               "diabetes": "diabetes", "t2d": "diabetes", "糖尿病": "diabetes", "mixed": "mixed", "混合": "mixed"}
TOPIC_LABELS = {"hypertension": _("high blood pressure"), "diabetes": _("diabetes"), "mixed": _("mixed")}
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
REASONS = {
    "not_found": _("Not found."),
    "invalid": _("This invite link is not valid. Please ask for a new one."),
    "full": _("Sorry, this circle is full (30 members)."),
    "already": _("You are already in this circle."),
    "removed": _("You cannot rejoin this circle."),
    "in_other_circle": _("You are already in a circle. Send /leave first to join another."),
    "bad_alias": _("Please choose an alias of 2-20 characters, not a phone number or @username."),
    "alias_taken": _("That alias is taken in this circle. Please choose another."),
    "alias_is_name": _("Please choose an alias that is not your real name: the circle is anonymous."),
    "not_member": _("You are not in a circle. Ask your doctor or circle leader for an invite link."),
    "no_session": _("No circle session is open now."),
    "usage": _("Please check the command and try again."),
    "no_readings": _("You have no readings in the last 7 days to share."),
    "over": _("This challenge week is over."),
}
DANGER_TEXT = _("That sounds serious. If you have chest pain, trouble breathing, a severe headache, "
                "blurred vision or confusion, call 120 or go to hospital now.")


def _reason(w: Who, outcome: Outcome) -> str:
    label = REASONS.get(outcome.reason, REASONS["not_found"])
    return w.t(label)


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


# ------------------------------------------------------------------ joining
async def start_join(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, code: str) -> None:
    """`/start g-<code>`: show the circle, a suggested alias and the rules; nothing is stored yet."""
    outcome = await w.services.circles.preview(w.user.id, code)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    if not w.onboarded:  # consent first: the emergency path needs a patient who can be alerted about
        await reply(update, w.t("Please finish setting up first: send /start, then open the circle link again."))
        return
    context.user_data["circle_join"] = {"code": code, "alias": outcome.alias}  # type: ignore[index]
    await _ask_agree(update, w, outcome.name, outcome.alias)


async def _ask_agree(update: Update, w: Who, name: str, alias: str) -> None:
    t = w.t
    await reply(update, t("You are invited to the peer-support circle \"{name}\". Members see only your alias, "
                          "never your name, phone or readings. Your alias: {alias}", name=name, alias=alias)
                + "\n\n" + t(RULES),
                reply_markup=inline([[(t("I agree, join as {alias}", alias=alias), "gr:join")],
                                     [(t("Choose another alias"), "gr:alias")]]))


async def _join_button(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, action: str) -> None:
    pending = (context.user_data or {}).get("circle_join")
    if not pending:
        await answer(update, w.t("This button has expired."))
        return
    await answer(update)
    if action == "alias":
        pending["typing"] = True
        await reply(update, w.t("Type the alias you want (2-20 characters). Please not your real name."))
        return
    outcome = await w.services.circles.join(w.user.id, pending["code"], pending["alias"])
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        if outcome.reason not in ("alias_taken", "alias_is_name", "bad_alias"):
            context.user_data.pop("circle_join", None)  # type: ignore[union-attr]
        return
    context.user_data.pop("circle_join", None)  # type: ignore[union-attr]
    w.services.outbox.wake()
    await reply(update, w.t("Welcome to \"{name}\", {alias}! You are in circle mode: what you write now goes to "
                            "the circle. Send /circle and press \"Back to my diary\" to log readings again. "
                            "/leave leaves the circle.", name=outcome.name, alias=outcome.alias))


# ------------------------------------------------------------------ /circle, /leave, circle mode
async def show(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    view = await w.services.circles.view(w.user.id)
    lines: list[str] = []
    rows: list[list[tuple[str, str]]] = []
    if view is not None:
        c, m = view.circle, view.member
        topic_label = TOPIC_LABELS.get(c.topic, TOPIC_LABELS["mixed"])
        lines.append(t("Circle \"{name}\" ({topic}), {n} of {max} members.", name=c.name, topic=t(topic_label),
                       n=view.members, max=c.max_members))
        lines.append(t("Your alias: {alias}. Leader: {leader}.", alias=m.alias, leader=view.leader_alias or "-"))
        if c.locked:
            lines.append("🔒 " + t("Locked: only the leader and the adviser can post."))
        lines.append(t("Now: your messages go to the circle.") if m.talking
                     else t("Now: your messages go to your diary."))
        if view.challenge is not None:
            label = CHALLENGE_LABELS[view.challenge.kind]
            board = await w.services.circles.leaderboard(c.id, view.challenge.id)
            lines.append("🏁 " + t(label) + ": " + (", ".join(f"{a} {n}" for a, n in board) or "-"))
        if m.role in ("leader", "adviser"):
            if view.unreachable:
                lines.append(t("Cannot be reached (blocked the bot): {aliases}", aliases=", ".join(view.unreachable)))
            lines.append(t("Leader tools: /circle_invite, /circle_mute <hours> <alias>, /circle_remove <alias>, "
                           "/circle_lock, /circle_unlock, /circle_schedule wed 19:30, /challenge measure_bp|walk|"
                           "no_pickles, /poll question|option|option, /next, /close, /circle_group, /circle_unlink"))
            if c.group_chat_id:
                lines.append(t("A Telegram group is linked: it gets announcements, never members' messages."))
        rows.append([(t("📔 Back to my diary"), "gr:talk:0") if m.talking else (t("💬 Talk in circle"), "gr:talk:1")])
        rows.append([(t("📊 Share my week"), "gr:share")])
        lines.append(t("/leave leaves the circle."))
    elif not w.user.has_role("doctor"):
        lines.append(_reason(w, Outcome(False, "not_member")))
    if w.user.has_role("doctor"):
        circles = await w.services.circles.circles_of_doctor(w.user.id)
        lines.append(t("Your team's circles:") + "".join(f"\n#{c.id} {c.name} ({n})" for c, n in circles))
        lines.append(t("Doctor commands: /circle_new <name> hypertension|diabetes|mixed, /circle_leader <circle> "
                       "<patient number>, /circle_invite <circle>, /event <circle,circle> text"))
    await reply(update, "\n".join(lines), reply_markup=inline(rows) if rows else None)


async def leave(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    outcome = await w.services.circles.leave(w.user.id)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, w.t("You left the circle \"{name}\". Your diary and your doctor are not affected.",
                            name=outcome.name))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Alias being typed, or circle mode; otherwise the text is a diary entry (readings). A plain
    reading may use the cached sender (the rule: dialogs.common.with_cached_sender)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    # An alias being typed is a write (the join) that does not check the revision: never cached.
    typing_alias = bool(((context.user_data or {}).get("circle_join") or {}).get("typing"))
    await with_cached_sender(update, context, not typing_alias and readings.stored_at_once(message.text), _on_text)


async def _on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.text
    w = await who(update, context)
    pending = (context.user_data or {}).get("circle_join")
    if pending and pending.get("typing"):
        alias = clean_alias(message.text)
        if alias is None:
            await reply(update, _reason(w, Outcome(False, "bad_alias")))
            return
        pending.update(alias=alias, typing=False)
        preview = await w.services.circles.preview(w.user.id, pending["code"])
        await _ask_agree(update, w, preview.name, alias)
        return
    if not await w.talking_in_circle():
        await readings.on_text(update, context)
        return
    check = moderation.safety_check(message.text)
    if check.hold:
        await _emergency(update, context, w, message.text, check)
        return
    await _relay(update, w, RelayInput(text=message.text, source_chat_id=message.chat_id,
                                       source_message_id=message.message_id,
                                       reply_to_telegram_id=_reply_id(update)))


async def _emergency(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, text: str,
                     check: moderation.SafetyCheck) -> None:
    """Not relayed. Safety advice privately; the doctor is alerted (reading path or symptom alert)."""
    if check.urgent_readings and w.onboarded:
        await readings.handle_text(update, context, w, text, update.update_id, w.user.id)
    else:
        await reply(update, w.t(DANGER_TEXT))
        await w.services.alerts.raise_symptom_alert(w.user.id, check.danger_signs, where="peer circle chat")
        w.services.outbox.wake()
    await reply(update, "🔒 " + w.t("This message was not sent to the circle: your health comes first. "
                                   "Your doctor has been told."))


def _reply_id(update: Update) -> int | None:
    message = update.effective_message
    target = message.reply_to_message if message is not None else None
    return target.message_id if target is not None else None


async def _relay(update: Update, w: Who, item: RelayInput) -> None:
    outcome = await w.services.circles.relay(w.user.id, item)
    if outcome.ok:
        w.services.outbox.wake()
        return
    t = w.t
    if outcome.reason == "flood":
        await reply(update, t("Please slow down a little: at most 5 messages in 10 seconds, so everyone can "
                              "follow. Your last message was not sent."))
    elif outcome.reason == "muted":
        until = outcome.extra["until"].astimezone(w.tz).strftime("%m-%d %H:%M")
        await reply(update, t("Your messages to the circle are paused until {time}.", time=until))
    elif outcome.reason == "locked":
        await reply(update, t("The circle is locked: only the leader and the adviser can post for now."))
    else:
        await reply(update, _reason(w, outcome))


async def on_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Photo, sticker, voice, document in circle mode: relayed by copyMessage under the alias."""
    message = update.effective_message
    if message is None:
        return
    w = await who(update, context)
    if not await w.talking_in_circle():
        await basics.non_text(update, context)
        return
    caption = message.caption or ""
    check = moderation.safety_check(caption)
    if check.hold:
        await _emergency(update, context, w, caption, check)
        return
    await _relay(update, w, RelayInput(text=caption, media=True, sticker=message.sticker is not None,
                                       source_chat_id=message.chat_id, source_message_id=message.message_id,
                                       reply_to_telegram_id=_reply_id(update)))


async def share(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    outcome = await w.services.circles.share_week(w.user.id)
    if outcome.ok:
        w.services.outbox.wake()
        await reply(update, w.t("Shared with the circle under your alias."))
    else:
        await _relay_failed(update, w, outcome)


async def _relay_failed(update: Update, w: Who, outcome: Outcome) -> None:
    if outcome.reason in ("flood", "muted", "locked"):
        await reply(update, w.t("Not sent: please try again later."))
    else:
        await reply(update, _reason(w, outcome))


# ------------------------------------------------------------------ buttons
async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    action = parts[1] if len(parts) > 1 else ""
    arg = _int(parts[2]) if len(parts) > 2 else None
    circles = w.services.circles
    if action in ("join", "alias"):
        await _join_button(update, context, w, action)
        return
    if action == "talk" and arg in (0, 1):
        outcome = await circles.set_talking(w.user.id, bool(arg))
        if not outcome.ok:
            await answer(update, t("This button has expired."))
            return
        await answer(update)
        await reply(update, t("Circle mode: what you write now goes to the circle as {alias}.", alias=outcome.alias)
                    if arg else t("Diary mode: what you write now is for your diary (readings), not the circle."))
        return
    if action == "share":
        await answer(update)
        await share(update, context)
        return
    if arg is None:
        await answer(update, t("This button has expired."))
        return
    outcome: Outcome
    if action == "rep":
        outcome = await circles.report(w.user.id, arg)
        done = t("Thank you. The circle leader will look at it.")
    elif action == "del":
        outcome = await circles.delete_message(w.user.id, arg)
        done = t("Deleted for everyone.")
    elif action == "mute":
        outcome = await circles.mute(w.user.id, 24, message_id=arg)
        done = t("{alias} is muted for 24 h.", alias=outcome.alias)
    elif action == "here":
        outcome = await circles.here(w.user.id, arg)
        done = t("Welcome! You are marked as present.")
    elif action == "pv" and len(parts) == 4 and parts[3].isdigit():
        outcome = await circles.vote(w.user.id, arg, int(parts[3]))
        done = t("Your vote: {option}", option=outcome.name) + " · " + ", ".join(
            f"{o} {n}" for o, n in outcome.extra.get("results", []))
    elif action == "ck":
        outcome = await circles.checkin(w.user.id, arg)
        target = outcome.extra.get("target", 5)
        done = (t("Already counted today: {days} of {target} days. Keep going!", days=outcome.count, target=target)
                if outcome.reason == "already" else
                t("Well done! {days} of {target} days.", days=outcome.count, target=target)
                + (" 🎉 " + t("Goal reached!") if outcome.count >= target else ""))
    else:
        await answer(update, t("This button has expired."))
        return
    if not outcome.ok:
        await answer(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await answer(update, done[:200])


# ------------------------------------------------------------------ leader and doctor commands
async def _doctor(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Who | None:
    w = await who(update, context)
    if not w.user.has_role("doctor"):
        await basics.unknown_command(update, context)
        return None
    return w


async def circle_new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    args = context.args or []
    topic = TOPIC_WORDS.get(args[-1].lower()) if len(args) >= 2 else None
    if topic is None:
        await reply(update, w.t("Usage: /circle_new <name> hypertension|diabetes|mixed"))
        return
    outcome = await w.services.circles.create(w.user.id, " ".join(args[:-1]), topic)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    await reply(update, w.t("Circle #{id} \"{name}\" created; you are its adviser. Next: /circle_leader {id} "
                            "<patient number>, then /circle_invite {id}.", id=outcome.circle_id, name=outcome.name))


async def circle_leader(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    args = [a.lstrip("#") for a in context.args or []]
    if len(args) != 2 or not all(a.isdigit() for a in args):
        await reply(update, w.t("Usage: /circle_leader <circle id> <patient number>"))
        return
    circle_id, patient_id = int(args[0]), int(args[1])
    allowed = await w.services.panel.team_patient(w.user.id, patient_id) is not None
    outcome = await w.services.circles.set_leader(w.user.id, circle_id, patient_id, allowed)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, w.t("Leader of \"{name}\" set; their alias is {alias}.", name=outcome.name,
                            alias=outcome.alias))


async def circle_invite(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    args = context.args or []
    circle_id = _int(args[0].lstrip("#")) if args else None
    outcome = await w.services.circles.invite(w.user.id, circle_id)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    url = f"https://t.me/{context.bot.username}?start={outcome.extra['payload']}"
    await reply(update, w.t("Invite link for the circle \"{name}\" (30 days, for several people):",
                            name=outcome.name) + f"\n{url}")


async def _moderate(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    w = await who(update, context)
    t = w.t
    args = context.args or []
    circles = w.services.circles
    if action == "mute":
        hours = float(args[0]) if args and args[0].replace(".", "", 1).isdigit() else None
        if hours is None or len(args) < 2:
            await reply(update, t("Usage: /circle_mute <hours> <alias>"))
            return
        outcome = await circles.mute(w.user.id, hours, alias=" ".join(args[1:]))
        done = t("{alias} is muted for {hours} h.", alias=outcome.alias, hours=f"{hours:g}")
    elif action == "remove":
        outcome = await circles.remove(w.user.id, " ".join(args))
        done = t("{alias} was removed from the circle.", alias=outcome.alias)
    else:
        outcome = await circles.lock(w.user.id, action == "lock")
        done = t("Circle locked.") if action == "lock" else t("Circle unlocked.")
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, done)


async def mute_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _moderate(update, context, "mute")


async def remove_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _moderate(update, context, "remove")


async def lock_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _moderate(update, context, "lock")


async def unlock_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _moderate(update, context, "unlock")


async def schedule_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    args = context.args or []
    day = WEEKDAYS.get(args[0].lower()[:3]) if args else None
    at = args[1] if len(args) > 1 else ""
    valid = len(at) == 5 and at[2] == ":" and at[:2].isdigit() and at[3:].isdigit() and int(at[:2]) < 24 \
        and int(at[3:]) < 60
    minutes = int(args[2]) if len(args) > 2 and args[2].isdigit() and 10 <= int(args[2]) <= 180 else 45
    if day is None or not valid:
        await reply(update, w.t("Usage: /circle_schedule wed 19:30 [minutes]"))
        return
    outcome = await w.services.circles.schedule(w.user.id, day, at, minutes)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    starts = outcome.extra["starts_at"].astimezone(w.tz)
    await reply(update, w.t("Sessions every week; the next one starts {when} ({minutes} min). Members get a "
                            "reminder the day before and 15 minutes before.", when=w.t.datetime(starts),
                            minutes=minutes))


async def next_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    outcome = await w.services.circles.next_topic(w.user.id)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, w.t("Next topic posted: {title}", title=outcome.name))


async def close_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    outcome = await w.services.circles.close_session(w.user.id)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, w.t("Session closed. The summary is on its way."))


async def poll_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    text = " ".join(context.args or [])
    parts = [p.strip() for p in text.split("|")]
    outcome = await w.services.circles.poll(w.user.id, parts[0], parts[1:]) if len(parts) >= 3 \
        else Outcome(False, "usage")
    if not outcome.ok:
        await reply(update, w.t("Usage: /poll question|option|option") if outcome.reason == "usage"
                    else _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, w.t("Poll sent to the circle."))


async def challenge_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    args = context.args or []
    kind = args[0].lower() if args else ""
    if kind not in CHALLENGE_KINDS:
        await reply(update, w.t("Usage: /challenge measure_bp|walk|no_pickles"))
        return
    outcome = await w.services.circles.start_challenge(w.user.id, kind)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, w.t("Challenge started for this week."))


async def event_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    args = context.args or []
    ids = [int(x) for x in args[0].replace("#", "").split(",") if x.isdigit()] if args else []
    if not ids or len(args) < 2:
        await reply(update, w.t("Usage: /event <circle,circle> text"))
        return
    outcome = await w.services.circles.announce(w.user.id, ids, " ".join(args[1:]))
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    w.services.outbox.wake()
    await reply(update, w.t("Announced to {n} circles.", n=outcome.extra["circles"]))


# ------------------------------------------------------------------ the linked Telegram group
async def group_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Private chat, leader or adviser: the one-time code to send in the group."""
    w = await who(update, context)
    outcome = await w.services.circles.group_code(w.user.id)
    if not outcome.ok:
        await reply(update, _reason(w, outcome))
        return
    t = w.t
    await reply(update, t("To link a Telegram group to \"{name}\": add me to the group, then send this there "
                          "within a day:", name=outcome.name) + f"\n/circle_link {outcome.extra['code']}\n\n"
                + t("I will post session reminders, topics, session summaries (counts only), challenges and "
                    "events there. Members' messages are never posted in the group: they stay in private "
                    "chats under aliases."))


async def link_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In the group. No `who()`: a group member need not be a user, and nothing is created for them."""
    tg_user, chat = update.effective_user, update.effective_chat
    if tg_user is None or chat is None:
        return
    services = services_of(context)
    user = await services.users.by_telegram(tg_user.id)
    code = (context.args or [""])[0]
    outcome = await services.circles.link_group(user.id, code, chat.id) if user is not None else Outcome(False)
    t = translator(user.language if user is not None else (tg_user.language_code or "en"))
    if outcome.ok:
        await reply(update, t("This group is now linked to the circle \"{name}\". I will post session reminders, "
                              "topics, summaries and events here. Members' messages stay private.",
                              name=outcome.name))
    else:
        await reply(update, t("This code is not valid. The circle leader or adviser can get a new one with "
                              "/circle_group in a private chat with me, and must send it here themselves."))


async def unlink_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    tg_user = update.effective_user
    if tg_user is None:
        return
    services = services_of(context)
    user = await services.users.by_telegram(tg_user.id)
    outcome = await services.circles.unlink_group(user.id) if user is not None else Outcome(False, "not_found")
    t = translator(user.language if user is not None else (tg_user.language_code or "en"))
    await reply(update, t("The group is no longer linked to the circle \"{name}\".", name=outcome.name)
                if outcome.ok else t(REASONS["not_found"]))


async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Removed from a group: forget the link, so announcements stop (and no 403 loop)."""
    change = update.my_chat_member
    if change is None or change.chat.type not in ("group", "supergroup"):
        return
    if change.new_chat_member.status in ("left", "kicked"):
        await services_of(context).circles.group_gone(change.chat.id)


async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The group became a supergroup: it has a new id."""
    message = update.effective_message
    if message is not None and message.migrate_to_chat_id:
        await services_of(context).circles.group_gone(message.chat_id, message.migrate_to_chat_id)


MEDIA = (filters.PHOTO | filters.Sticker.ALL | filters.VOICE | filters.Document.ALL | filters.VIDEO
         | filters.AUDIO | filters.ANIMATION)


PRIVATE = filters.ChatType.PRIVATE  # a circle's card, aliases and tools never show in a group


def handlers() -> list[Any]:
    return [
        CommandHandler("circle", show, filters=PRIVATE),
        CommandHandler("leave", leave, filters=PRIVATE),
        CommandHandler("share", share, filters=PRIVATE),
        CommandHandler("circle_new", circle_new, filters=PRIVATE),
        CommandHandler("circle_leader", circle_leader, filters=PRIVATE),
        CommandHandler("circle_invite", circle_invite, filters=PRIVATE),
        CommandHandler("circle_mute", mute_cmd, filters=PRIVATE),
        CommandHandler("circle_remove", remove_cmd, filters=PRIVATE),
        CommandHandler("circle_lock", lock_cmd, filters=PRIVATE),
        CommandHandler("circle_unlock", unlock_cmd, filters=PRIVATE),
        CommandHandler("circle_schedule", schedule_cmd, filters=PRIVATE),
        CommandHandler("next", next_cmd, filters=PRIVATE),
        CommandHandler("close", close_cmd, filters=PRIVATE),
        CommandHandler("poll", poll_cmd, filters=PRIVATE),
        CommandHandler("challenge", challenge_cmd, filters=PRIVATE),
        CommandHandler("event", event_cmd, filters=PRIVATE),
        CommandHandler("circle_group", group_cmd, filters=filters.ChatType.PRIVATE),
        CommandHandler("circle_link", link_cmd, filters=filters.ChatType.GROUPS),
        CommandHandler("circle_unlink", unlink_cmd),
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate),
        CallbackQueryHandler(on_button, pattern=r"^gr:"),
        MessageHandler(MEDIA & filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE, on_media),
        MessageHandler(filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE,
                       on_text),
    ]
