"""The one check of a named choice, and the names themselves."""

import subprocess
import sys

import pytest

from dim_keras import choices


def test_a_known_value_is_returned_unchanged():
    assert choices.check_choice("estimator", "dv", choices.ESTIMATORS) == "dv"
    assert choices.check_choices("probes", ["knn"], choices.PROBES) == ("knn",)


def test_an_unknown_value_names_the_setting_and_the_choices():
    with pytest.raises(ValueError) as info:
        choices.check_choice("local_critic", "mine", choices.LOCAL_CRITICS)
    assert str(info.value) == (
        "Unknown local critic; expected one of encode_and_dot, "
        "concat_and_convolve. Received: local_critic='mine'"
    )


def test_an_empty_or_partly_unknown_list_is_refused():
    with pytest.raises(ValueError, match=r"Received: layers=\[\]"):
        choices.check_choices("layers", [], choices.PROBED_LAYERS)
    with pytest.raises(ValueError, match=r"Received: layers=\['y', 'z'\]"):
        choices.check_choices("layers", ["y", "z"], choices.PROBED_LAYERS)


def test_the_names_match_what_implements_them():
    from dim_keras.networks import critics
    from dim_keras.networks import encoders

    assert tuple(critics.LOCAL_CRITICS) == choices.LOCAL_CRITICS
    assert set(encoders.ENCODER_IMAGE_SIZE) | set(
        encoders.AUDIO_ENCODERS) == set(choices.ENCODERS)


def test_choices_and_settings_import_without_keras():
    code = (
        "import sys, dim_keras.choices, dim_keras.config, dim_keras; "
        "sys.exit('keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
