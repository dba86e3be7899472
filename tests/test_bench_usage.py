"""bench.usage reports a command's own peak RSS, not the size of the process that started
it (a child's ru_maxrss on Linux starts at its parent's RSS), plus its CPU, code and output."""

import sys

from bench.usage import measure, own_peak_rss

MB = 1024 * 1024


def test_a_small_command_started_by_a_large_process_reports_its_own_peak():
    ballast = bytearray(200 * MB)
    ballast[::4096] = b"\1" * len(range(0, len(ballast), 4096))  # touched, so resident
    assert own_peak_rss() > 200 * MB
    small = measure([sys.executable, "-c", "print('hi')"])
    grown = measure(
        [sys.executable, "-c", "x = bytearray(80 * 2**20); x[::4096] = b'1' * len(x[::4096])"]
    )
    assert small.output == "hi\n" and small.exit_code == 0
    assert small.peak_rss < 60 * MB
    assert grown.peak_rss > 80 * MB > small.peak_rss
    assert grown.cpu > 0
    del ballast


def test_the_exit_code_is_the_commands():
    assert measure([sys.executable, "-c", "raise SystemExit(3)"]).exit_code == 3
