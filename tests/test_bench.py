"""benchmarks/bench.py: cases named by what they run, and a smoke run that shows no figures."""

from __future__ import annotations

import pytest

from benchmarks import bench


@pytest.mark.parametrize("tiny", [False, True], ids=["full", "smoke"])
def test_cases_are_named_by_the_options_they_run(tiny: bool) -> None:
    for case in bench.cases(tiny):
        assert case.name.split() == [*case.ours_extra, *case.args]
        assert f"-m {case.messages} " in f"{case.name} "


def test_smoke_cases_are_smaller_and_say_so() -> None:
    full, smoke = bench.cases(False), bench.cases(True)
    assert [c.messages for c in smoke] == [max(10, c.messages // 100) for c in full]
    assert all("-m 20000" not in c.name for c in smoke)


def test_smoke_run_shows_no_figures(capsys: pytest.CaptureFixture[str]) -> None:
    samples = [bench.Sample(wall=0.5, cpu=0.1, max_rss_kib=30_000)]
    row = bench.Row("-s 1 -m 200 -l 1024", 200, ours=samples, theirs=samples)
    bench.show(row, tiny=True)
    assert capsys.readouterr().out == "ran: -s 1 -m 200 -l 1024\n"
    bench.show(row, tiny=False)
    assert capsys.readouterr().out.split("|")[1:5] == [
        " -s 1 -m 200 -l 1024 ", " 400 ", " 400 ", " 1.00 "
    ]
    assert "Smoke run" in bench.SMOKE_NOTE and "none are shown" in bench.SMOKE_NOTE


def samples(*walls: float, stderr: str = "") -> list[bench.Sample]:
    return [bench.Sample(wall=w, cpu=0.1, max_rss_kib=30_000, stderr=f"{stderr}{w}\n")
            for w in walls]


def test_quick_start_keeps_the_run_of_median_wall_time() -> None:
    quick = bench.QuickStart("qmqp-source --embedded-sink", samples(0.9, 0.3, 0.5))
    assert quick.median_run().wall == 0.5
    assert bench.QuickStart("q", samples(0.4, 0.2)).median_run().wall == 0.2


def test_results_text_has_the_table_start_up_and_quick_start() -> None:
    row = bench.Row("-s 10 -m 100 -l 1024", 100, ours=samples(0.5), theirs=samples(0.25))
    start_up = bench.Row("-s 1 -m 1", 1, ours=samples(0.1, 0.12, 0.14),
                         theirs=samples(0.004, 0.005, 0.006))
    quick = bench.QuickStart("qmqp-source --embedded-sink -s 20 -m 10000",
                             samples(0.4, 0.5, 0.6, stderr="summary "))
    text = bench.results_text([row], start_up, quick, pairs=1)
    assert text.startswith("# Benchmark results\n\n")
    assert "| -s 10 -m 100 -l 1024 | 400 | 200 | 0.50 |" in text
    assert "\n## Start-up\n" in text and "| -s 1 -m 1 | 5.0 | 120.0 |" in text
    quick_section = text[text.index(bench.QUICK_START_HEADING):]
    assert "`qmqp-source --embedded-sink -s 20 -m 10000`" in quick_section
    assert "```text\nsummary 0.5\n```" in quick_section
    assert "\n## " not in bench.results_text([row], None, None, pairs=1)
