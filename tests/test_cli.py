"""`dim-keras train`: bad options stop at once with one line."""

import os

import pytest
from click.testing import CliRunner

from dim_keras.apps.cli import main
from tests.helpers import speakers_folder


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mnist"], "Received: dataset='mnist'"),
        (["--estimator", "mine"], "Received: estimator='mine'"),
        (["--alpha", "-1"], "Received: alpha=-1.0"),
        (["--alpha", "0", "--beta", "0"], "alpha=0.0, beta=0.0"),
        (["--batch-size", "1"], "Received: batch_size=1"),
        (["--encoder", "vgg"], "Received: encoder='vgg'"),
        (["--views", "3"], "Received: views=3"),
        (["--views", "2", "--occlusion"], "views=2, occlusion=True"),
        (["--score-clip", "-1"], "Received: score_clip=-1.0"),
        (["--scales", "local-local"], "needs views=2"),
        (["--views", "2", "--scales", "y-local,y-tiny"], "y-tiny"),
        (["--channel-split", "luma-chroma", "--views", "2"],
         "does not combine with views=2"),
        (["--channel-split", "lab"], "lab"),
        (["--knn-every", "-1"], "Received: knn_every=-1"),
        (["--chunk-seconds", "0"], "Received: chunk_seconds=0.0"),
    ],
)
def test_bad_options_fail_before_any_work(tmp_path, args, message):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--out", str(out)] + args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in lines[0]
    assert not os.path.exists(out)


def test_config_file_with_unknown_key_is_refused(tmp_path):
    config = tmp_path / "best.json"
    config.write_text('{"alpha": 1.0, "colour": "red"}')
    result = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert result.exit_code == 2
    assert "Received: ['colour']" in result.output


@pytest.mark.slow  # about 3 minutes: a full run and its evaluation
def test_train_end_to_end_with_config_file(tmp_path):
    config = tmp_path / "best.json"
    config.write_text('{"estimator": "nce", "critic_units": 16, "epochs": 1}')
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["train", "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Run directory" in result.output
    import json

    saved = json.loads((out / "config.json").read_text())
    assert saved["estimator"] == "nce" and saved["critic_units"] == 16
    assert saved["online_probe"] is True and saved["knn_every"] is None
    assert "kNN monitor:" in result.output  # the period it measured
    # The evaluation after training: few labels in, MINE and NDM left to
    # `dim-keras evaluate`.
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["settings"]["mine_steps"] == 0
    assert any("labels_per_class" in p for p in evaluation["probes"])
    assert (out / "label_efficiency.png").stat().st_size > 1000
    assert "adds them" in result.output


def test_monitor_options_reach_the_run(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", "--out", str(out), "--epochs", "1", "--critic-units", "16",
        "--steps-per-epoch", "2", "--no-online-probe", "--knn-every", "0",
        "--no-evaluate"])
    assert result.exit_code == 0, result.output
    import json

    saved = json.loads((out / "config.json").read_text())
    assert saved["online_probe"] is False and saved["knn_every"] == 0
    assert "knn" not in (out / "history.csv").read_text()


def test_two_views_train_with_nce_unless_an_estimator_is_given(tmp_path):
    import json

    args = ["train", "--views", "2", "--epochs", "1", "--steps-per-epoch",
            "1", "--batch-size", "4", "--critic-units", "8",
            "--no-evaluate", "--no-online-probe", "--knn-every", "0"]
    out = tmp_path / "nce"
    scales = "y-local,y-conv,local-local"  # AMDIM's three predictions
    result = CliRunner().invoke(
        main, args + ["--out", str(out), "--scales", scales])
    assert result.exit_code == 0, result.output
    # 32x32 digits take the 32x32 recipe's crop: AMDIM's CIFAR-10 shift.
    assert "two views, each by random translation (up to 4 px" in (
        result.output)
    saved = json.loads((out / "config.json").read_text())
    assert saved["views"] == 2 and saved["estimator"] == "nce"
    assert saved["scales"] == scales and saved["view_crop"] == "translate"
    # AMDIM's temperature for an 8-unit critic, sqrt(8), with its clipping
    # and penalty, all unless given.
    assert saved["score_temperature"] == pytest.approx(8 ** 0.5)
    assert saved["score_clip"] == 20.0 and saved["score_penalty"] == 0.05
    assert "scores divided by 2.83, soft-clipped at 20" in result.output
    # The same command resumes (the unset temperature resolves alike).
    resumed = CliRunner().invoke(
        main, args[:2] + ["2", "--epochs", "2"] + args[5:]
        + ["--out", str(out), "--scales", scales])
    assert resumed.exit_code == 0, resumed.output
    # Resuming with one view is another objective: refused.
    again = CliRunner().invoke(main, args[:1] + ["--views", "1", "--epochs",
                                                 "2", "--out", str(out)])
    assert again.exit_code != 0
    assert "views" in again.output


def _config_given(monkeypatch, args):
    """The `TrainConfig` `dim-keras train ARGS` hands to training."""
    import dim_keras.training

    seen = {}

    def capture(config, run_dir, **kwargs):
        seen["config"] = config
        return {"paths": {}, "writer": False, "epochs_done": 0}

    monkeypatch.setattr(dim_keras.training, "train", capture)
    result = CliRunner().invoke(main, ["train", "--no-evaluate"] + args)
    assert result.exit_code == 0, result.output
    return seen["config"]


def test_the_command_line_leaves_unset_what_is_not_given(monkeypatch,
                                                          tmp_path):
    from dim_keras.config import TrainConfig

    config = _config_given(monkeypatch, ["--views", "2"])
    assert config == TrainConfig(views=2)  # the rest: resolved by training
    # A config file's settings apply; options given win over them.
    path = tmp_path / "jsd.json"
    path.write_text('{"views": 2, "estimator": "jsd", "batch_size": 8}')
    config = _config_given(monkeypatch, ["--config", str(path),
                                         "--batch-size", "4", "--no-jit"])
    assert config == TrainConfig(views=2, estimator="jsd", batch_size=4,
                                 jit_compile=False)
    config = _config_given(monkeypatch, ["--lr-schedule", "cosine"])
    assert config == TrainConfig(lr_schedule="cosine")


def test_the_linear_solver_option_reaches_the_evaluation(monkeypatch,
                                                          tmp_path):
    import dim_keras.evaluation

    seen = {}

    def capture(run_dir, config=None, **kwargs):
        seen["solver"] = config.linear_solver
        raise ValueError("captured")

    monkeypatch.setattr(dim_keras.evaluation, "evaluate_run", capture)
    run = str(tmp_path / "run")
    result = CliRunner().invoke(main, ["evaluate", run])
    assert seen["solver"] == "auto" and "captured" in result.output
    result = CliRunner().invoke(
        main, ["evaluate", run, "--linear-solver", "minibatch"])
    assert seen["solver"] == "minibatch"
    seen.clear()
    result = CliRunner().invoke(
        main, ["evaluate", run, "--linear-solver", "newton"])
    assert result.exit_code == 2 and not seen
    assert result.output == (
        "Error: Unknown linear solver; expected one of auto, lbfgs, "
        "minibatch. Received: linear_solver='newton'\n")


def test_an_unknown_learning_rate_schedule_is_refused_in_one_line():
    result = CliRunner().invoke(main, ["train", "--lr-schedule", "step"])
    assert result.exit_code == 2
    assert ("expected one of constant, cosine. Received: "
            "lr_schedule='step'") in result.output
    assert "Traceback" not in result.output


def _train_speech(dataset, out, *options):
    """`dim-keras train` on a speech folder with a tiny critic; its output."""
    result = CliRunner().invoke(main, [
        "train", "--dataset", dataset, "--critic-units", "8", "--no-evaluate",
        "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return result.output


def test_speech_trains_two_chunks_of_a_speaker_with_nce(tmp_path):
    import json

    dataset = speakers_folder(str(tmp_path / "speech"))
    out = tmp_path / "run"
    output = _train_speech(dataset, out, "--epochs", "1",
                           "--steps-per-epoch", "1", "--batch-size", "3")
    assert "two chunks of one speaker" in output
    saved = json.loads((out / "config.json").read_text())
    assert saved["views"] == 2 and saved["estimator"] == "nce"
    assert saved["encoder"] == "wave1d"
    # The image multi-view recipe is not speech's.
    assert saved["score_clip"] == 0.0 and saved["score_penalty"] == 0.0
    assert saved["score_temperature"] == 8 ** 0.5  # speech's: sqrt(width)


def test_speech_chunk_too_short_for_the_encoder_is_one_line(tmp_path):
    dataset = speakers_folder(str(tmp_path / "speech"), seconds=0.3)
    result = CliRunner().invoke(main, [
        "train", "--dataset", dataset, "--chunk-seconds", "0.005",
        "--no-evaluate", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: wave1d needs chunks of at least 160")
    assert "Received: chunk_seconds=0.005 (80 samples)" in lines[-1]


@pytest.mark.slow  # trains, evaluates and exports a speech run
def test_speech_short_8khz_clips_chunk_seconds_monitors_export(tmp_path):
    import json

    import numpy as np
    import tensorflow as tf

    # 0.2 s clips at 8 kHz: every one shorter than a 0.25 s chunk.
    dataset = speakers_folder(str(tmp_path / "clips"), per_speaker=10,
                              seconds=0.2, rate=8000)
    out = tmp_path / "run"
    output = _train_speech(dataset, out, "--chunk-seconds", "0.25",
                           "--epochs", "1", "--steps-per-epoch", "2",
                           "--knn-every", "1")
    assert ("Used 30 of 30 audio files (6.0 s of speech, 3 speakers) in "
            "chunks of 0.25 s; 30 shorter than a chunk, padded by repeating "
            "them; left out 0 (0.0 s).") in output
    saved = json.loads((out / "config.json").read_text())
    assert saved["chunk_seconds"] == 0.25 and saved["batch_size"] == 3
    history = (out / "history.csv").read_text().splitlines()
    assert "online_probe_y_acc" in history[0] and "knn_y_acc" in history[0]
    # evaluate reads the run's chunks; a resume keeps them.
    result = CliRunner().invoke(main, ["evaluate", str(out)])
    assert result.exit_code == 0, result.output
    assert "test chunks of 0.25 s" in result.output
    report = json.loads((out / "evaluation.json").read_text())
    assert report["chunk_length"] == 4000
    output = _train_speech(dataset, out, "--epochs", "2",
                           "--steps-per-epoch", "2", "--knn-every", "1")
    assert "chunks of 0.25 s" in output
    result = CliRunner().invoke(main, ["export", str(out)])
    assert result.exit_code == 0, result.output
    assert "float32 waveforms [batch, samples] at 16 kHz" in result.output
    served = tf.saved_model.load(str(out / "export" / "saved_model"))
    waves = tf.constant(np.zeros((2, 8000), "float32") + 0.1)
    assert served.serve(waves)["y"].shape == (2, 64)
