"""Fixtures shared by the tests: one trained run for the whole session.

Tests that read or resume a finished run copy `trained_run` (`run_copy`)
instead of training their own; tests about a training itself train with
`tests.helpers.tiny_config()`.
"""

import hashlib
import os
import shutil

import pytest

from tests import helpers


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A finished run of two tiny epochs (`helpers.TRAINED_RUN`).

    Read it, never write it: tests that change a run use `run_copy`. At the
    end of the session its files must be as they were (a test that wrote
    through one of `run_copy`'s links fails here).
    """
    from dim_keras.training import train

    path = str(tmp_path_factory.mktemp("trained") / "run")
    train(helpers.trained_run_config(), path, verbose=0, log=helpers.quiet)
    before = _fingerprints(path)
    yield path
    assert _fingerprints(path) == before, "a test changed the trained run"


def _fingerprints(directory):
    return {
        os.path.relpath(os.path.join(root, name), directory):
            _fingerprint(os.path.join(root, name))
        for root, _, names in os.walk(directory) for name in names
    }


def _fingerprint(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of `trained_run` that the test may change.

    Files over 1 MiB (the checkpoints and the encoder, 140 MB in all) are
    hard links, not copies: every write of a run replaces its files
    (`dim_keras.atomic`), which leaves the linked original as it was. A test
    that damages one of them must replace it too (`helpers.replace_file`),
    never write into it.
    """
    path = str(tmp_path / "run")
    shutil.copytree(trained_run, path, copy_function=_link_large_files)
    return path


def _link_large_files(source, target):
    if os.path.getsize(source) > 2 ** 20:
        os.link(source, target)
    else:
        shutil.copy2(source, target)
