"""How a sweep waits for a job on SLURM (mnistctl/sweep/slurm_wait.py): a requeued job that looks ended for a
moment is still awaited; a job that stays ended gets its job.json as its result.

    .venv/bin/python -m pytest tests/test_slurm_wait.py

SLURM's answers are scripted here (a real cluster's requeue rarely shows the moment these tests need): the
job is a stand-in for submitit's, and what squeue says comes from the `answers` fixture, one answer per poll.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mnistctl.sweep import scheduler, slurm_wait, status
from mnistctl.sweep.job_folder import write_record

JOB_ID, KEY = "7_0", "criterion=ce"
UNANSWERED = "(squeue does not answer)"
POLLS_BEYOND_GRACE = 20  # the grace below is five polls


class SubmittedJob:
    """submitit's Job as AwaitedJob uses it: its result file appears after `polls` polls. Its done() would ask
    sacct, which a cluster without accounting answers with an error that submitit prints every few polls."""

    def __init__(self, polls: int, folder: Path) -> None:
        self.job_id, self.polls = JOB_ID, polls
        self.paths = SimpleNamespace(folder=folder, result_pickle=self)

    def exists(self) -> bool:  # paths.result_pickle.exists()
        self.polls -= 1
        return self.polls < 0

    def done(self) -> bool:
        raise AssertionError("done() asks sacct")

    def results(self) -> list:
        return ["the job's result"]


class Clock:
    """slurm_wait's time: sleeping moves it on at once, so the polls and the grace period are counted exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def started(sweep_dir: Path) -> None:
    """The job's folder as its attempt leaves it when stopped from outside: job.json still says running."""
    (sweep_dir / "0").mkdir()
    write_record(sweep_dir / "0", {"key": KEY, "status": "running", "val_acc": 0.9})


@pytest.fixture
def answers(monkeypatch):
    """Scripts squeue's answer about the job, one per poll (the last one repeats); the grace is five polls."""
    script: list[str | None] = []

    def slurm_states(ids: list[str]) -> dict[str, str]:
        state = script.pop(0) if len(script) > 1 else script[0]
        if state == UNANSWERED:
            raise scheduler.Unreachable("squeue did not answer")
        return {} if state is None else {JOB_ID: state}

    monkeypatch.setattr(slurm_wait, "time", Clock())
    monkeypatch.setattr(slurm_wait, "GRACE_S", slurm_wait.POLL_S * 5)
    monkeypatch.setattr(scheduler, "slurm_states", slurm_states)
    return script


def test_a_requeued_job_that_looks_ended_for_a_moment_is_still_awaited(answers, tmp_path):
    # Bug caught: the first poll that saw the job ended started a grace period that nothing ended, so a
    # requeued job whose next attempt outlasted it was reported "interrupted" while it was running.
    answers += ["RUNNING", None, "PENDING", "RUNNING"]  # forgotten by squeue for one poll
    job = slurm_wait.AwaitedJob(SubmittedJob(POLLS_BEYOND_GRACE, tmp_path), tmp_path, KEY)
    assert job.results() == ["the job's result"]


def test_a_job_that_ends_after_looking_ended_once_still_gets_time_to_write_its_result(answers, tmp_path):
    # Bug caught: the grace period counted from the moment long before, so a job that returned was reported
    # "interrupted" in the seconds submitit takes to write its result.
    answers += ["RUNNING", None, *["RUNNING"] * 10, "COMPLETED"]  # the result is there two polls after it ended
    assert slurm_wait.AwaitedJob(SubmittedJob(14, tmp_path), tmp_path, KEY).results() == ["the job's result"]


def test_a_result_that_appears_as_the_grace_runs_out_is_taken(answers, tmp_path):
    # Bug caught: the job was given up without a last look for its result file, which submitit may have
    # written during the poll that ended the grace.
    answers += ["RUNNING", None]  # forgotten from the second poll on: the grace runs out at the eighth
    assert slurm_wait.AwaitedJob(SubmittedJob(8, tmp_path), tmp_path, KEY).results() == ["the job's result"]


@pytest.mark.parametrize(
    "state", ["SIGNALING", "STAGE_OUT", "STOPPED", "SUSPENDED", "SPECIAL_EXIT", "RESV_DEL_HOLD", UNANSWERED]
)
def test_a_job_slurm_still_holds_is_awaited(answers, tmp_path, state):
    # Bug caught: states SLURM shows for a job it still holds, or no answer at all, read as ended.
    answers += [state]
    assert slurm_wait.AwaitedJob(SubmittedJob(POLLS_BEYOND_GRACE, tmp_path), tmp_path, KEY).results() == [
        "the job's result"
    ]


@pytest.mark.parametrize("ended", [None, "CANCELLED", "TIMEOUT"], ids=["forgotten", "cancelled", "timeout"])
def test_a_job_that_stays_ended_gets_its_record_as_interrupted(answers, tmp_path, ended):
    started(tmp_path)
    answers += ["RUNNING", ended]
    [result] = slurm_wait.AwaitedJob(SubmittedJob(10**6, tmp_path), tmp_path, KEY).results()
    assert result.return_value.record == {"key": KEY, "status": "interrupted", "val_acc": 0.9}


def test_a_job_that_stays_ended_is_given_up_though_squeue_sometimes_does_not_answer(answers, tmp_path):
    # Bug caught: an unanswered poll counted as "still there" and restarted the grace period, so with a
    # controller that times out now and then the sweep never gave up on a job that had ended.
    started(tmp_path)
    answers += ["RUNNING", *[None, None, UNANSWERED] * 100]  # longer than the 200 polls
    [result] = slurm_wait.AwaitedJob(SubmittedJob(200, tmp_path), tmp_path, KEY).results()
    assert result.return_value.record["status"] == "interrupted"


@pytest.mark.parametrize(("state", "note"), [("RUNNING", ""), ("SUSPENDED", "SLURM SUSPENDED")])
def test_sweep_status_says_which_state_a_job_slurm_still_holds_is_in(state, note):
    # Bug caught: a suspended job shown as plainly running (or as interrupted, before SUSPENDED counted as live).
    row = {"record": {"status": "running"}, "slurm_job_id": JOB_ID, "slurm_state": state}
    assert status._state(row, asked=True) == ("running", note)
