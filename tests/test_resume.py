"""Checkpoint and resume: a run stopped by Ctrl-C and resumed equals the uninterrupted run, bit for bit,
and its trace continues without a gap or a duplicate row."""

from __future__ import annotations

import signal

import pytest
import torch

from alm_bench import checkpoint
from alm_bench.controllers.auglag import AugLagController
from alm_bench.controllers.ema_alm import EMAALM
from alm_bench.errors import UserError
from conftest import read_summary, run_cli, tiny_problem, train

STEPS, STOP_AT = 50, 23  # the stop falls mid-epoch (22 steps per epoch) and between trace rows


class CtrlCAt:
    """Sends SIGINT to this process from inside the loss of call `at`, as a user's Ctrl-C would arrive."""

    def __init__(self, problem, at: int) -> None:
        self.problem, self.at, self.calls = problem, at, 0
        self._loss = problem.loss
        problem.loss = self

    def __call__(self, logits, labels):
        self.calls += 1
        if self.calls == self.at:
            signal.raise_signal(signal.SIGINT)
        return self._loss(logits, labels)


def _final_weights(run_dir):
    return checkpoint.load(checkpoint.last_path(run_dir))["model"]


@pytest.mark.slow
@pytest.mark.parametrize("make_controller, precision", [(EMAALM, "fp32"), (EMAALM, "fp16"),
                                                        (lambda: AugLagController(max_inner_steps=10, force_not_converged=True), "fp32")])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, make_controller, precision):
    whole, whole_rows = train(tiny_problem(max_steps=STEPS, precision=precision), make_controller(),
                              tmp_path / "whole")

    stopped_problem = tiny_problem(max_steps=STEPS, precision=precision)
    CtrlCAt(stopped_problem, STOP_AT)
    stopped, _ = train(stopped_problem, make_controller(), tmp_path / "stopped", seed=0)
    assert stopped["status"] == "interrupted" and stopped["iterations"] == STOP_AT
    assert "resume=" in stopped["message"]

    resumed, rows = train(tiny_problem(max_steps=STEPS, precision=precision), make_controller(), tmp_path / "resumed",
                          seed=0, resume=tmp_path / "stopped")
    assert resumed["status"] == whole["status"] and resumed["iterations"] == STEPS
    for key in ("g", "lambda", "rho", "g_ema", "test_accuracy", "objective"):
        assert resumed.get(key) == whole.get(key) or (resumed.get(key) != resumed.get(key)), key  # NaN == NaN
    for name, tensor in _final_weights(tmp_path / "whole").items():
        assert torch.equal(tensor, _final_weights(tmp_path / "resumed")[name]), name

    steps = [int(r["step"]) for r in rows]
    assert steps == [int(r["step"]) for r in whole_rows]  # contiguous: no gap, no duplicate
    for mine, theirs in zip(rows, whole_rows):
        assert {k: v for k, v in mine.items() if k != "wall_time_s"} == \
               {k: v for k, v in theirs.items() if k != "wall_time_s"}


def test_resume_from_a_folder_without_checkpoint_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no checkpoint at"):
        train(tiny_problem(), EMAALM(), tmp_path / "new", resume=tmp_path / "empty")


@pytest.mark.slow
def test_cli_resume_continues_a_finished_run_to_a_longer_budget(tmp_path, outputs):
    common = ["train", "problem=synthetic", "controller=ema_alm", "device=cpu", "problem.synthetic.train_size=400",
              "problem.synthetic.image_size=16", "problem.width=8", "problem.batch_size=32", "problem.log_every=5"]
    first = run_cli(*common, "problem.max_steps=12", f"hydra.run.dir={tmp_path / 'first'}")
    assert first.returncode == 0, first.stderr
    second = run_cli(*common, "problem.max_steps=24", f"resume={tmp_path / 'first'}",
                     f"hydra.run.dir={tmp_path / 'second'}")
    assert second.returncode == 0, second.stderr
    whole = run_cli(*common, "problem.max_steps=24", f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr
    a, b = read_summary(tmp_path / "second"), read_summary(tmp_path / "whole")
    assert a["g"] == b["g"] and a["lambda"] == b["lambda"] and a["test_accuracy"] == b["test_accuracy"]
    steps = [int(line.split(",")[0]) for line in (tmp_path / "second" / "trace.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == 24
