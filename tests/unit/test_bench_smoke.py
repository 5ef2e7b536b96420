"""The benchmarks at a tiny size, so they cannot rot: each must run end to end through
FakeTelegram and print the JSON lines `make bench` and docs/benchmarks.md rely on."""

from __future__ import annotations

import json

import pytest

import bench.__main__ as runner
from bench import alerts, readings, throughput


def lines(out: str) -> dict[str, dict]:
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["metric"]: r for r in records}


def test_runner_discovers_every_benchmark_module() -> None:
    names = runner.discover()
    assert {"alerts", "readings", "throughput"} <= set(names)
    assert "common" not in names and "__main__" not in names


def test_throughput_reports_three_bots_with_every_reply(capsys: pytest.CaptureFixture[str]) -> None:
    throughput.main(["--users", "4", "--messages", "2"])
    got = lines(capsys.readouterr().out)
    for label in ("a: echo, PTB defaults", "b: echo, CareCircle glue", "c: full app, /help"):
        record = got[f"updates_per_second[{label}]"]
        assert record["replies"] == record["messages"] == 8
        assert record["value"] > 0 and record["p99_ms"] is not None
    assert got["updates_per_second[b: echo, CareCircle glue]"]["baseline"] > 0


def test_readings_stores_every_reading_and_times_it(capsys: pytest.CaptureFixture[str]) -> None:
    readings.main(["--patients", "4", "--per-patient", "2", "--rate", "10", "--seconds", "0.5",
                   "--db", "sqlite", "--parser-seconds", "0.05"])
    got = lines(capsys.readouterr().out)
    assert got["parser_messages_per_second"]["value"] > 0
    burst = got["stored_readings_per_second[sqlite]"]
    assert burst["stored"] == burst["sent"] == 8 and burst["saved_replies"] == 8  # the warm-up not counted
    assert burst["warmup"] is True
    assert burst["cpu_ms_per_reading"] > 0 and got["echo_baseline_updates_per_second"]["cpu_ms_per_update"] > 0
    load = got["offered_load_p99_ms[sqlite]"]
    assert load["saved"] == load["sent"] == 5 and load["value"] is not None


def test_alerts_delivers_every_alert_once(capsys: pytest.CaptureFixture[str]) -> None:
    alerts.main(["--rate", "20", "--seconds", "1", "--db", "sqlite", "--drain-timeout", "10"])
    got = lines(capsys.readouterr().out)
    record = got["alert_delivery_p99_ms[sqlite]"]
    assert record["urgent_readings"] == record["alert_rows"] == record["delivered"] == 1
    assert record["alerts_lost"] == 0 and record["duplicates"] == 0
    assert record["value"] is not None
