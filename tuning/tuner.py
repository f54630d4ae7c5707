"""The KerasTuner pieces: a hypermodel of `TrainConfig`s and a DIM tuner.

`DIMHyperModel.build(hp)` declares the space (see `tuning.space`) and
returns the `TrainConfig` of a trial, not a model: training happens in
`DIMTuner.run_trial`, which calls `dim_keras.training.train` in the trial's
own directory and scores the encoder with a probe. Because a trial trains
in a run directory, a trial interrupted mid-way resumes from its last
finished epoch when KerasTuner runs it again, and a Hyperband trial that
continues an earlier one starts from a copy of that trial's run.

The oracles are KerasTuner's own (random search, Bayesian optimization,
Hyperband), so KerasTuner's reloading (`overwrite=False`), failure
handling and chief/worker distribution all apply.
"""

import dataclasses
import os
import shutil
import time

import keras
import keras_tuner as kt

from dim_keras import atomic
from dim_keras import runs
from dim_keras.choices import TUNERS
from dim_keras.choices import check_choice
from dim_keras.config import TrainConfig

from dim_keras.tuning import space

OBJECTIVE = kt.Objective("val_probe_acc", "max")
RUN_DIR = "run"
FAILURE = "failure.txt"


class DIMHyperModel(kt.HyperModel):
    """Maps hyperparameters to the `TrainConfig` of a trial.

    Args:
        base_config: `TrainConfig` holding every setting not searched
            (dataset, batch size, encoder, critic width, seed, ...).
        pins: dict of pinned values (see `tuning.space.check_pins`).
        epochs_per_trial: int, epochs of a trial (Hyperband trials use
            its `tuner/epochs` instead).
    """

    def __init__(self, base_config, pins, epochs_per_trial):
        super().__init__(name="dim")
        self.base_config = base_config
        self.pins = space.check_pins(pins)
        self.epochs_per_trial = epochs_per_trial

    def build(self, hp):
        """Declares the space on `hp`; returns the trial's `TrainConfig`."""
        base = self.base_config
        start = {"estimator": base.estimator, "gamma": base.gamma,
                 "lr": base.lr, "views": base.views,
                 "score_temperature": base.score_temperature,
                 "score_clip": base.score_clip}
        values = space.declare(hp, self.pins, start)
        epochs = int(hp.values.get("tuner/epochs", self.epochs_per_trial))
        return dataclasses.replace(self.base_config, epochs=epochs, **values)


def search_role():
    """This process's part in a search: `"alone"`, `"chief"` or `"worker"`.

    Read from KerasTuner's documented environment variables of distributed
    tuning: `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` mark a
    distributed search; `KERASTUNER_TUNER_ID` is `"chief"` for the process
    serving the oracle, another id (`"tuner0"`, ...) for each worker.

    Raises:
        ValueError: when `KERASTUNER_ORACLE_IP` is set without the port or
            the tuner id.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "alone"
    missing = [name for name in ("KERASTUNER_ORACLE_PORT",
                                 "KERASTUNER_TUNER_ID")
               if name not in os.environ]
    if missing:
        raise ValueError(
            "A distributed search needs KERASTUNER_ORACLE_PORT and "
            f"KERASTUNER_TUNER_ID beside KERASTUNER_ORACLE_IP. Received: "
            f"{', '.join(missing)} unset"
        )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def make_oracle(tuner, max_trials, epochs_per_trial, seed,
                max_consecutive_failed_trials=3):
    """A KerasTuner oracle maximizing `val_probe_acc`.

    Args:
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: int, trials at most (Hyperband included: its brackets
            repeat until this many trials have run).
        epochs_per_trial: int; Hyperband's `max_epochs`.
        seed: int, the oracle's seed.
        max_consecutive_failed_trials: int, failed trials in a row that
            stop the search.

    Returns:
        A `keras_tuner.Oracle`.
    """
    check_choice("tuner", tuner, TUNERS)
    common = dict(
        objective=OBJECTIVE,
        # KerasTuner takes a seed of 0 as "no seed".
        seed=seed + 1,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
    )
    if tuner == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(
            max_trials=max_trials, **common
        )
    oracle = kt.oracles.HyperbandOracle(
        max_epochs=epochs_per_trial, factor=3, hyperband_iterations=None,
        **common
    )
    # Endless Hyperband iterations, stopped by the base Oracle's trial cap
    # (max_trials is not part of the saved state, so a rerun may raise it).
    oracle.max_trials = max_trials
    return oracle


def failure_reason(message):
    """The last line of a failed trial's traceback, without the class."""
    lines = [line.strip() for line in (message or "").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    kind, _, reason = lines[-1].partition(": ")
    if reason and kind.replace(".", "").replace("_", "").isalnum():
        return reason
    return lines[-1]


class DIMTuner(kt.engine.base_tuner.BaseTuner):
    """Runs DIM trials: train a few epochs, then probe the encoder.

    Args:
        oracle: a KerasTuner oracle (see `make_oracle`).
        hypermodel: `DIMHyperModel`.
        scorer: callable taking an encoder and returning a dict with
            `accuracy` (see `tuning.scoring.ProbeScorer`).
        directory: str, the search directory.
        project_name: str, KerasTuner's project folder inside it.
        log: callable for one-line progress messages.
        train_verbose: Keras `fit` verbosity inside trials.
    """

    def __init__(self, oracle, hypermodel, scorer, directory, project_name,
                 log=print, train_verbose=0):
        self.scorer = scorer
        self.log = log
        self.train_verbose = train_verbose
        self._started = {}
        self._trial_seconds = []
        super().__init__(
            oracle,
            hypermodel=hypermodel,
            directory=directory,
            project_name=project_name,
            overwrite=False,
        )
        if search_role() != "worker":
            self._forget_ended_retries()
            # Saved at once, so a search killed in its first trial reloads.
            self.save()

    def _forget_ended_retries(self):
        # On reload KerasTuner queues every trial of `ongoing_trials` for a
        # retry. Its `end_trial` saves the oracle before it drops the ended
        # trial from `ongoing_trials` (a chief never saves again), so a trial
        # that had ended may be among them; its own file says it ended.
        # KerasTuner has no public API for its retry queue.
        oracle = self.oracle
        oracle._retry_queue = [
            trial_id for trial_id in oracle._retry_queue
            if oracle.trials[trial_id].status not in ("COMPLETED", "FAILED")
        ]

    def _get_tuner_fname(self):
        # Overrides a private hook of KerasTuner's (no public one names this
        # file). KerasTuner reloads the oracle only if this file exists. The process
        # holding the oracle (alone or chief) uses one name whatever its
        # KERASTUNER_TUNER_ID, so a search continues across both modes.
        name = self.tuner_id if search_role() == "worker" else "oracle_holder"
        return os.path.join(str(self.project_dir), f"tuner_{name}.json")

    def trial_run_dir(self, trial_id):
        """The `dim-keras train` run directory of a trial."""
        return os.path.join(self.get_trial_dir(trial_id), RUN_DIR)

    def trial_config(self, trial):
        """The `TrainConfig` a trial trains (settings left unset: unset)."""
        return self.hypermodel.build(trial.hyperparameters.copy())

    def trained_config(self, trial):
        """The `TrainConfig` a trial trained, as its run recorded it.

        The run records its settings resolved (the dataset's recipe and the
        view scheme filled in), so `best.json` repeats the trial exactly;
        a trial that never wrote its run gives `trial_config`'s.
        """
        path = os.path.join(self.trial_run_dir(trial.trial_id),
                            runs.CONFIG_FILE)
        if os.path.exists(path):
            try:
                return TrainConfig.from_dict(runs.read_config(path))
            except (runs.DamagedFileError, ValueError):
                pass
        return self.trial_config(trial)

    def _continue_from_past_trial(self, trial, run_dir):
        past_id = trial.hyperparameters.values.get("tuner/trial_id")
        if past_id is None or os.path.exists(run_dir):
            return
        past_run = self.trial_run_dir(past_id)
        partial = f"{run_dir}.partial-{os.getpid()}"
        shutil.copytree(past_run, partial)
        os.replace(partial, run_dir)

    def run_trial(self, trial, *args, **kwargs):
        """Trains the trial's configuration and returns its metrics.

        Returns:
            Dict with `val_probe_acc` (the objective), the probe's training
            accuracy, the last epoch's DIM losses and the trial's seconds.

        Raises:
            keras_tuner.errors.FailedTrialError: if training diverges or
                the features are not finite.
        """
        from dim_keras.progress import Progress
        from dim_keras.progress import keras_callback
        from dim_keras.training import train

        start = time.time()
        keras.backend.clear_session()
        config = self.trial_config(trial)
        run_dir = self.trial_run_dir(trial.trial_id)
        self._continue_from_past_trial(trial, run_dir)
        # On a terminal a line with the trial's epochs and ETA; elsewhere
        # nothing (`on_trial_end` logs the trial's line).
        progress = Progress(f"Trial {trial.trial_id}", config.epochs,
                            "epochs", live=None if not self.train_verbose
                            else False, log=False)
        try:
            with progress:
                result = train(config, run_dir, verbose=self.train_verbose,
                               log=lambda message: None,
                               callbacks=[keras_callback(progress,
                                                         per="epoch")])
                progress.update(config.epochs)
            encoder = runs.load_encoder(run_dir)
            score = self.scorer(encoder)
        except (runs.RunError, FloatingPointError) as e:
            raise kt.errors.FailedTrialError(str(e)) from e
        last = result["history"][-1]
        metrics = {
            OBJECTIVE.name: float(score["accuracy"]),
            "probe_train_acc": float(score.get("train_accuracy", float("nan"))),
            "trial_seconds": time.time() - start,
        }
        for key in ("loss", "local_mi", "global_mi", "prior_loss"):
            if key in last:
                metrics[key] = float(last[key])
        return metrics

    def on_trial_begin(self, trial):
        self._started[trial.trial_id] = time.time()
        config = self.trial_config(trial)
        self.log(
            f"Trial {trial.trial_id} started: {describe(config)}"
            + (f" (continues trial {trial.hyperparameters.values['tuner/trial_id']})"
               if "tuner/trial_id" in trial.hyperparameters.values else "")
        )

    def on_trial_end(self, trial):
        if trial.status in ("FAILED", "INVALID"):
            # The reason does not travel to a chief over gRPC: keep it in
            # the (shared) trial directory for the results table.
            atomic.write_text(
                os.path.join(self.get_trial_dir(trial.trial_id), FAILURE),
                failure_reason(trial.message) + "\n",
            )
        super().on_trial_end(trial)
        seconds = time.time() - self._started.pop(trial.trial_id, time.time())
        self._trial_seconds.append(seconds)
        ended = self.oracle.get_trial(trial.trial_id)
        if ended.status == kt.engine.trial.TrialStatus.COMPLETED:
            best = self.oracle.get_best_trials(1)[0]
            self.log(
                f"Trial {trial.trial_id} done in {seconds:.0f}s: "
                f"{OBJECTIVE.name}={ended.score:.4f} (best so far "
                f"{best.score:.4f}, trial {best.trial_id}){self._eta()}"
            )
        else:
            self.log(
                f"Trial {trial.trial_id} {ended.status.lower()} after "
                f"{seconds:.0f}s: {failure_reason(ended.message or trial.message)}"
            )

    def _eta(self):
        """`"; 3 of 20 trials ended, ETA 12 min"` at this process's pace.

        Empty in a distributed search's worker, whose oracle client holds
        no trial table.
        """
        if not isinstance(self.oracle, kt.engine.oracle.Oracle):
            return ""
        return search_eta(self.oracle.trials.values(),
                          getattr(self.oracle, "max_trials", None),
                          self._trial_seconds)

    def trial_failure(self, trial):
        """Why a trial failed (one line), or "" if unknown."""
        reason = failure_reason(trial.message)
        path = os.path.join(self.get_trial_dir(trial.trial_id), FAILURE)
        if not reason and os.path.exists(path):
            with open(path) as f:
                reason = f.read().strip()
        return reason

    def load_model(self, trial):
        """The encoder a trial trained."""
        from dim_keras import runs

        return runs.load_encoder(self.trial_run_dir(trial.trial_id))


def search_eta(trials, max_trials, trial_seconds):
    """How many trials ended and the search's ETA, as a line's ending.

    Args:
        trials: the oracle's trials.
        max_trials: int or None, the trials the search runs in all.
        trial_seconds: list of seconds of the trials this process ran.

    Returns:
        str, e.g. `"; 3 of 20 trials ended, ETA 12 min"`, or "" when
        `max_trials` is unknown.
    """
    from dim_keras.progress import format_seconds

    if not max_trials:
        return ""
    ended = sum(t.status in ("COMPLETED", "FAILED", "INVALID")
                for t in trials)
    text = f"; {ended} of {max_trials} trials ended"
    left = max(0, max_trials - ended)
    if left and trial_seconds:
        mean = sum(trial_seconds) / len(trial_seconds)
        text += f", ETA {format_seconds(mean * left)}"
    return text


def describe(config):
    """One line naming a trial's searched values."""
    return (
        f"estimator={config.estimator} alpha={config.alpha:.3g} "
        f"beta={config.beta:.3g} gamma={config.gamma:.3g} "
        f"lr={config.lr:.3g} epochs={config.epochs}"
    )
