"""Urgent first, below the app: the processor's priority slots keep each chat in order when an
urgent update promotes its chat, and the send window's urgent lane still never lets more than
30 sends into any second."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from telegram import Chat, Message, Update

from bot.telegram.processor import ChatOrderedProcessor, PriorityGate
from bot.telegram.ratelimit import FloodLimiter, SendWindow
from bot.telegram.triage import is_urgent, urgent_text


class Ledger:
    def __init__(self) -> None:
        self.marked: list[int] = []

    async def mark(self, update_id: int) -> None:
        self.marked.append(update_id)


def update(update_id: int, chat_id: int, text: str) -> Update:
    chat = Chat(id=chat_id, type="private")
    return Update(update_id, message=Message(update_id, datetime.now(UTC), chat, text=text))


class Run:
    """Feeds updates to a processor as PTB does (one task per update, in arrival order) and
    records the order their handlers ran in; the first handler can be held."""

    def __init__(self, processor: ChatOrderedProcessor) -> None:
        self.processor = processor
        self.order: list[str] = []
        self.hold = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def feed(self, update_id: int, chat_id: int, text: str, name: str, *, held: bool = False) -> None:
        async def handle() -> None:
            self.order.append(name)
            if held:
                await self.hold.wait()
            await asyncio.sleep(0)

        self.tasks.append(asyncio.create_task(self.processor.process_update(update(update_id, chat_id, text),
                                                                            handle())))

    async def finish(self) -> None:
        self.hold.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 5)


def test_triage_finds_urgent_texts_only() -> None:
    assert urgent_text("185/115") and urgent_text("血糖 2.5") and urgent_text("glucose 25")
    assert urgent_text("胸痛")  # a danger sign without a reading
    assert not urgent_text("135/85") and not urgent_text("血压150/95 心率72") and not urgent_text("空腹血糖 6.8")
    assert not urgent_text("/start 185") and not urgent_text("hello")
    assert is_urgent(update(1, 5, "185/115")) and not is_urgent(update(2, 5, "135/85"))


async def test_an_urgent_update_promotes_its_chat_without_overtaking_the_chat_s_earlier_updates() -> None:
    ledger = Ledger()
    run = Run(ChatOrderedProcessor(ledger, max_concurrent_updates=1, urgent_reserve=0))
    run.feed(1, 100, "131/81", "a1", held=True)  # holds the only slot
    for n, chat in enumerate((200, 300, 400), start=2):
        run.feed(n, chat, "132/82", f"{chat}")
    run.feed(5, 900, "133/83", "x1")  # chat 900: two ordinary readings, then an urgent one
    run.feed(6, 900, "134/84", "x2")
    run.feed(7, 900, "185/115", "x3")
    run.feed(8, 500, "135/85", "500")
    await asyncio.sleep(0.05)
    assert run.processor.urgent_seen == 1
    await run.finish()
    # Chat 900 went before the three chats that were waiting ahead of it, in its own order.
    assert run.order == ["a1", "x1", "x2", "x3", "200", "300", "400", "500"]
    assert sorted(ledger.marked) == list(range(1, 9))  # every update handled and marked once


async def test_a_slow_ledger_mark_holds_neither_the_slot_nor_the_chat() -> None:
    """Issue 4: on SQLite a mark queues for the one writer behind the readings' transactions; while
    it did so in the slot, slots were busy about twice as long as the handlers and the bot queued
    at 200 readings/s. Each mark must still come after its own handler."""
    events: list[str] = []
    committed = asyncio.Event()

    class SlowLedger:
        async def mark(self, update_id: int) -> None:
            events.append(f"mark {update_id}")
            await committed.wait()

    processor = ChatOrderedProcessor(SlowLedger(), max_concurrent_updates=1, urgent_reserve=0)

    def feed(update_id: int, chat_id: int) -> asyncio.Task[None]:
        async def handle() -> None:
            events.append(f"handle {update_id}")
            await asyncio.sleep(0)
            events.append(f"handled {update_id}")

        return asyncio.create_task(processor.process_update(update(update_id, chat_id, "131/81"), handle()))

    tasks = [feed(1, 100), feed(2, 200), feed(3, 100)]
    await asyncio.sleep(0.05)
    # All three ran with one slot while update 1's mark was still waiting; chat 100 kept its order.
    assert [e for e in events if e.startswith("handle ")] == ["handle 1", "handle 2", "handle 3"]
    for n in (1, 2, 3):
        assert events.index(f"mark {n}") > events.index(f"handled {n}")
    # A chat's mark is handed to the ledger before the chat's next update starts, so the ledger's
    # group commit (ids taken in the order given) never commits update 3's mark without update 1's.
    assert events.index("mark 1") < events.index("handle 3")
    assert not any(t.done() for t in tasks)  # each update's task ends only once it is marked
    committed.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert processor.gate.running == 0 and not processor._locks


async def test_without_urgent_updates_chats_are_admitted_in_arrival_order() -> None:
    run = Run(ChatOrderedProcessor(Ledger(), max_concurrent_updates=1, urgent_reserve=0))
    run.feed(1, 100, "131/81", "a1", held=True)
    for n, chat in enumerate((200, 300, 900, 400), start=2):
        run.feed(n, chat, "132/82", f"{chat}")
    await run.finish()
    assert run.order == ["a1", "200", "300", "900", "400"]


async def test_an_urgent_chat_takes_a_reserved_slot_when_the_ordinary_ones_are_full() -> None:
    run = Run(ChatOrderedProcessor(Ledger(), max_concurrent_updates=2, urgent_reserve=1))
    run.feed(1, 100, "131/81", "a", held=True)
    run.feed(2, 200, "131/81", "b", held=True)
    run.feed(3, 300, "131/81", "c")  # waits: both ordinary slots are busy
    run.feed(4, 900, "185/115", "urgent")
    await asyncio.sleep(0.05)
    assert run.order == ["a", "b", "urgent"]  # admitted while a and b still run
    await run.finish()
    assert run.order[-1] == "c"


async def test_a_flooding_chat_is_still_throttled() -> None:
    run = Run(ChatOrderedProcessor(Ledger(), max_concurrent_updates=4, max_queued_per_chat=3))
    for n in range(1, 8):
        run.feed(n, 100, "185/115", f"m{n}", held=n == 1)
    await asyncio.sleep(0.05)
    await run.finish()
    assert run.order == ["m1", "m2", "m3"] and run.processor.dropped == 4


async def test_while_urgent_work_runs_ordinary_updates_get_only_the_quiet_slots() -> None:
    gate = PriorityGate(limit=8, reserve=2, quiet=3)
    assert await gate.enter("u", True) is True
    admitted = [asyncio.create_task(gate.enter(n, False)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert sum(t.done() for t in admitted) == 2  # 3 running in all (1 urgent, 2 ordinary); the rest wait
    gate.leave(True)  # the urgent update finished: the ordinary limit is back to 8
    await asyncio.sleep(0.01)
    assert all(t.done() for t in admitted) and gate.running == 5


async def test_while_urgent_work_runs_updates_committing_their_mark_count_toward_quiet() -> None:
    """A handled update commits its mark outside its slot; beside urgent work it still counts, so
    the quiet limit means what it meant when the mark was inside the slot."""
    gate = PriorityGate(limit=8, reserve=2, quiet=3)
    assert await gate.enter("u", True) is True
    gate.marking = 2  # two handled updates are committing their marks
    admitted = [asyncio.create_task(gate.enter(n, False)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert not any(t.done() for t in admitted)  # 1 running + 2 marking = quiet
    gate.marked()
    await asyncio.sleep(0.01)
    assert sum(t.done() for t in admitted) == 1
    gate.leave(True)  # no urgent work left: marks do not count against the ordinary limit
    await asyncio.sleep(0.01)
    assert all(t.done() for t in admitted) and gate.running == 3


async def test_the_urgent_lane_goes_first_and_never_exceeds_30_in_any_second() -> None:
    limiter = FloodLimiter()
    arrivals: list[tuple[float, str]] = []

    async def send(kind: str) -> bool:
        await asyncio.sleep(0.005)  # the server sees it a little after we started it
        arrivals.append((time.monotonic(), kind))
        await asyncio.sleep(0.005)
        return True

    t0 = time.monotonic()
    ordinary = [asyncio.create_task(limiter.process_request(send, ("ordinary",), {}, "sendMessage",
                                                            {"chat_id": 1000 + i}, {"bulk": True}))
                for i in range(70)]
    await asyncio.sleep(0.05)  # 30 went out at once; 40 ordinary sends are queued
    urgent = [asyncio.create_task(limiter.process_request(send, ("urgent",), {}, "sendMessage",
                                                          {"chat_id": 5000 + i}, {"bulk": True, "urgent": True}))
              for i in range(35)]
    await asyncio.wait_for(asyncio.gather(*ordinary, *urgent), 10)
    arrivals.sort()
    kinds = [kind for _at, kind in arrivals]
    assert kinds[:30] == ["ordinary"] * 30
    assert kinds[30:65] == ["urgent"] * 35  # every queued ordinary send stepped aside
    for i, (start, _kind) in enumerate(arrivals):
        assert sum(1 for at, _k in arrivals[i:] if at - start < 1.0) <= 30
    assert time.monotonic() - t0 < 4.5  # 105 sends: about three windows plus a bit


async def test_send_window_lanes_share_one_limit() -> None:
    window = SendWindow(4, 0.3)
    for _ in range(2):
        await window.acquire()
    for _ in range(2):
        await window.acquire(urgent=True)
    blocked = [asyncio.create_task(window.acquire()), asyncio.create_task(window.acquire(urgent=True))]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in blocked)  # four in flight, whichever lane
    window.release()
    await asyncio.sleep(0.35)
    assert blocked[1].done() and not blocked[0].done()  # the freed slot went to the urgent lane
    for t in blocked:
        t.cancel()
