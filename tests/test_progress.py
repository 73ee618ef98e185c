"""Long stages show progress on the console (issue 24, item 9): the jobs of stages 2 and 7 log progress lines,
which slap.sh follows; a tqdm bar in a log file is one line rewritten with carriage returns."""

from espnet2_slap.queue.progress import PROGRESS_WORD, Progress, duration


def test_progress_lines_come_at_most_every_interval_and_at_the_end(monkeypatch):
    clock = iter([0.0, 1.0, 31.0, 32.0, 40.0])
    monkeypatch.setattr("espnet2_slap.queue.progress.time.monotonic", lambda: next(clock))
    logged = []
    progress = Progress("formatted", total=4, unit="utterances", every=30.0, log=logged.append)
    for _ in range(4):
        progress.step()
    assert logged == [
        f"{PROGRESS_WORD} formatted 2 of 4 utterances (50 %), 0.1/s, about 31 s left",
        f"{PROGRESS_WORD} formatted 4 of 4 utterances (100 %), 0.1/s, about 0 s left",
    ]


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (40, 720, 12600, float("inf"))] == ["40 s", "12 min", "3.5 h", "an unknown time"]
