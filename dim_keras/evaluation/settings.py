"""`EvaluationConfig`: every setting of an evaluation, and its checks."""

import dataclasses

import numpy as np

from dim_keras.choices import LINEAR_SOLVERS
from dim_keras.choices import PROBED_LAYERS
from dim_keras.choices import PROBES
from dim_keras.choices import check_choice
from dim_keras.choices import check_choices
from dim_keras.evaluation.few_labels import FEW_LABEL_DRAWS
from dim_keras.evaluation.few_labels import LABEL_LADDER
from dim_keras.evaluation.few_labels import check_ladder
from dim_keras.evaluation.linear_settings import LINEAR_C_GRID
from dim_keras.evaluation.linear_settings import check_linear_c


# The evaluation that follows `dim-keras train` unless told otherwise: the
# numbers that tell whether training helped (linear and kNN probes on every
# label and on few labels, against random weights and pixels), in under a
# minute on the default digits run. The MLP probe, the t-SNE map, MINE and
# NDM (about three and a half minutes more there) are `dim-keras
# evaluate`'s.
AFTER_TRAINING = {"probes": ("linear", "knn"), "embedding_points": 0,
                  "mine_steps": 0, "ndm_steps": 0}


@dataclasses.dataclass
class EvaluationConfig:
    """Every setting of an evaluation.

    Args:
        layers: encoder outputs to probe.
        probes: probes of the DIM encoder, some of `"linear"`, `"mlp"`,
            `"knn"`.
        baselines: bool, also evaluate random weights and raw pixels.
        baseline_probes: probes of the baselines (those also in `probes`
            run); linear and kNN by default, as the MLP probe is the
            slowest.
        batch_size: int, images per forward pass when extracting.
        seed: int, seeds every probe, critic and the random encoder.
        linear_c: inverse L2 strength of the linear probe: a positive
            float, or a sequence to choose from on the held-out
            `validation_fraction` of train (`probes.LINEAR_C_GRID` by
            default).
        linear_max_iter: int, its L-BFGS iterations at most.
        linear_solver: `"auto"` (L-BFGS on small problems, minibatch Adam
            on the training device on large ones: `probes.linear_solver`),
            `"lbfgs"` or `"minibatch"`.
        linear_epochs: int or None, epochs of each minibatch fit; None
            runs 15, more where they are cheap
            (`linear_minibatch.epochs_for`).
        linear_batch_size: int, batch size of the minibatch fits.
        mlp_epochs: int, MLP probe epochs at most (early stopping).
        mlp_patience: int, epochs without validation gain before stopping.
        mlp_learning_rate: float, MLP probe Adam learning rate. 1e-3 by
            default: with early stopping it converges in a few epochs; the
            paper's 1e-4 (whose authors varied it per probe) needs many
            more.
        mlp_batch_size: int, MLP probe batch size.
        validation_fraction: float, share of train held out for the MLP
            probe's early stopping and the linear probe's choice of C.
        knn_k: int, neighbours of the kNN probe.
        knn_temperature: float, kNN vote temperature.
        mine_steps: int, MINE critic training batches at most (0 skips
            MINE); it stops earlier when its validation bound stops
            rising.
        mine_batch_size: int.
        mine_units: int, MINE critic width.
        mine_learning_rate: float.
        mine_eval_every: int, MINE batches between validation scores.
        mine_patience: int, MINE validation rounds without a better bound
            before it stops.
        ndm_steps: int, NDM discriminator training batches (0 skips NDM).
        ndm_batch_size: int.
        ndm_learning_rate: float.
        embedding_points: int, test images in the t-SNE map of Y
            (`embedding.png`), a seeded subsample when there are more;
            0 skips the map.
        few_labels: labels per class of the few-label probes (linear and
            kNN fitted on that many labelled training images of each
            class, `dim_keras.evaluation.few_labels`); the rungs below the
            smallest class run; empty skips them.
        few_label_draws: int, random draws of the labelled images per
            rung (mean and spread reported).
        finetune: bool, also fine-tune the encoder with a linear head end
            to end on the same few-label draws, against the same network
            trained from random initialization
            (`dim_keras.evaluation.finetune`); slow on a CPU, off by
            default.
    """

    layers: tuple = PROBED_LAYERS
    probes: tuple = PROBES
    baselines: bool = True
    baseline_probes: tuple = ("linear", "knn")
    batch_size: int = 256
    seed: int = 0
    linear_c: tuple = LINEAR_C_GRID
    linear_max_iter: int = 200
    linear_solver: str = "auto"
    linear_epochs: int = None
    linear_batch_size: int = 512
    mlp_epochs: int = 100
    mlp_patience: int = 5
    mlp_learning_rate: float = 1e-3
    mlp_batch_size: int = 64
    validation_fraction: float = 0.1
    knn_k: int = 20
    knn_temperature: float = 0.07
    mine_steps: int = 2000
    mine_batch_size: int = 128
    mine_units: int = 128
    mine_learning_rate: float = 1e-3
    mine_eval_every: int = 100
    mine_patience: int = 4
    ndm_steps: int = 500
    ndm_batch_size: int = 128
    ndm_learning_rate: float = 1e-4
    embedding_points: int = 2000
    few_labels: tuple = LABEL_LADDER
    few_label_draws: int = FEW_LABEL_DRAWS
    finetune: bool = False

    def validate(self):
        """Checks the settings.

        Raises:
            ValueError: naming the bad setting and its value.
        """
        check_choices("probes", self.probes, PROBES, what="probe")
        if self.baseline_probes:
            check_choices("baseline_probes", self.baseline_probes, PROBES,
                          what="probe")
        check_choices("layers", self.layers, PROBED_LAYERS, what="layer")
        positive = ("batch_size", "mlp_epochs", "mlp_batch_size", "knn_k",
                    "linear_max_iter", "linear_batch_size",
                    "mine_eval_every", "mine_patience")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be positive. "
                    f"Received: {name}={getattr(self, name)}"
                )
        for name in ("mine_steps", "ndm_steps", "mlp_patience"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be non-negative. "
                    f"Received: {name}={getattr(self, name)}"
                )
        if self.embedding_points and self.embedding_points < 3:
            raise ValueError(
                "embedding_points must be 0 (no map) or at least 3. "
                f"Received: embedding_points={self.embedding_points}"
            )
        for name in ("mine_batch_size", "ndm_batch_size"):
            if getattr(self, name) < 2:
                raise ValueError(
                    f"{name} must be at least 2. "
                    f"Received: {name}={getattr(self, name)}"
                )
        check_linear_c(self.linear_c)
        check_ladder(self.few_labels)
        if self.few_label_draws < 1:
            raise ValueError(
                "few_label_draws must be positive. "
                f"Received: few_label_draws={self.few_label_draws}")
        if self.linear_epochs is not None and self.linear_epochs < 1:
            raise ValueError(
                "linear_epochs must be positive or None. "
                f"Received: linear_epochs={self.linear_epochs}")
        check_choice("linear_solver", self.linear_solver, LINEAR_SOLVERS)
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "validation_fraction must be in (0, 1). "
                f"Received: validation_fraction={self.validation_fraction}"
            )
        return self

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["layers"] = list(self.layers)
        values["probes"] = list(self.probes)
        values["baseline_probes"] = list(self.baseline_probes)
        values["few_labels"] = [int(n) for n in self.few_labels]
        if np.ndim(self.linear_c):
            values["linear_c"] = [float(c) for c in self.linear_c]
        return values
