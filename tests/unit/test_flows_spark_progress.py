"""The Spark progress bar (`StageProgress`) draws what Spark's status tracker reports: the
active stages and their tasks done of all. Here the tracker is a stand-in that advances on each
poll (no Java needed); tests/spark/ draws the bar from a real session."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from rich.console import Console

from ppsguard.flows.engines.spark import StageProgress


@dataclass
class Info:  # PySpark's SparkStageInfo field names
    numTasks: int
    numCompletedTasks: int


class Tracker:
    def __init__(self) -> None:
        self.polls = 0
        self.enough = threading.Event()

    def getActiveStageIds(self) -> list[int]:
        self.polls += 1
        if self.polls >= 5:
            self.enough.set()
        return [3] if self.polls < 8 else []

    def getStageInfo(self, stage: int) -> Info:
        return Info(numTasks=8, numCompletedTasks=min(self.polls, 8))


class Context:
    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def statusTracker(self) -> Tracker:
        return self.tracker


class Session:
    def __init__(self, tracker: Tracker) -> None:
        self.sparkContext = Context(tracker)


def test_the_bar_shows_the_active_stage_and_its_tasks() -> None:
    tracker = Tracker()
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    progress = StageProgress(Session(tracker), True, console)
    progress.every = 0.01
    with progress:
        assert tracker.enough.wait(10)
    text = out.getvalue()
    assert "spark stage 3" in text
    assert "4/8" in text or "5/8" in text, text


def test_no_bar_when_progress_is_off() -> None:
    tracker = Tracker()
    out = io.StringIO()
    with StageProgress(Session(tracker), False, Console(file=out, force_terminal=True)):
        pass
    assert tracker.polls == 0 and out.getvalue() == ""
