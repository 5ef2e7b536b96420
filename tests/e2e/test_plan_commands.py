"""/plan is findable (issue 10): the doctor's /help and /patient name it, the patient's /help too."""

from __future__ import annotations

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from tests.e2e.helpers import doctor, linked_patient


async def test_help_and_patient_card_mention_plan(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    await doc.send("/help")
    doctor_help = (await doc.next_message()).text
    assert "/plan <number> — Set a patient's care plan" in doctor_help
    assert doctor_help.rstrip().endswith("In an emergency call 120.")
    await u.send("/help")
    patient_help = (await u.next_message()).text
    assert "/plan — My care plan and plan card" in patient_help and "Set a patient's care plan" not in patient_help
    await doc.send(f"/patient {user.id}")
    card = (await doc.next_message()).text
    assert f"Care plan: /plan {user.id}" in card, card
