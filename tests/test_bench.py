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
