"""SearchSettings: defaults written once, read by the command line."""

import subprocess
import sys

import pytest

from dim_keras.tuning import settings
from dim_keras.tuning.settings import SearchSettings


def test_the_cli_shows_the_settings_defaults():
    from click.testing import CliRunner

    from dim_keras.apps.cli import main

    help_text = CliRunner().invoke(main, ["tune", "--help"]).output
    assert settings.default("max_trials") == 10
    assert f"[default: {settings.default('max_trials')}]" in help_text
    assert f"[default: {settings.default('tuner')}]" in help_text


@pytest.mark.parametrize("changes, message", [
    ({"tuner": "grid"}, "Received: tuner='grid'"),
    ({"probe": "svm"}, "Received: probe='svm'"),
    ({"max_trials": 0}, "Received: max_trials=0"),
    ({"val_fraction": 1.0}, "Received: val_fraction=1.0"),
    ({"labels_per_class": 0}, "Received: labels_per_class=0"),
    ({"labels_per_class": 1, "probe": "mlp"}, "probe='mlp'"),
])
def test_bad_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        SearchSettings(**changes).validate()


def test_settings_import_without_keras():
    code = ("import sys, dim_keras.tuning.settings; "
            "sys.exit('keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
