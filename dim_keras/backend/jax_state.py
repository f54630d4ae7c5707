"""Where the JAX train step keeps the state of its other optimizers.

`DeepInfoMax` has up to three optimizers: `optimizer` (the encoder and the
MI critics), `discriminator_optimizer` (the prior discriminator) and
`probe_optimizer` (the online probe's heads). Keras's JAX `fit` compiles a
stateless `train_step(state, data)`: it carries from step to step, and
writes back to the variables, only what `state` holds.

What Keras documents. The guide "Customizing what happens in `fit()` with
JAX" (keras.io/guides/custom_train_step_in_jax) gives `state` as
`(trainable_variables, non_trainable_variables, optimizer_variables,
metrics_variables)`: the values of the variables of `self.optimizer`, the
one optimizer, and those of the metrics in `self.metrics`, in that order.
It has no place for the state of a second optimizer. The one documented way
to give a model several optimizers, `keras.optimizers.MultiOptimizer` (in
the pinned Keras 3.15.1), makes them one `self.optimizer`, whose variables
are all of theirs. It does not fit this model:

- it would replace `DeepInfoMax.optimizer`, the attribute that callbacks and
  saving see (and its `learning_rate` raises), on JAX alone or on every
  backend;
- the checkpoints (`save_weights`) would change layout: a run saved before
  would resume with its optimizers' state skipped (Keras only warns);
- it steps every variable at once from one list of gradients, while this
  step takes three gradients of three objectives and leaves the probe's
  optimizer alone on unlabelled batches.

So the discriminator's and the probe's optimizer state ride in the last
item of `state`, after the metrics' variables, and `MetricsState` is the one
place that knows it: it says what `DeepInfoMax.metrics_variables` lists,
splits the values a step receives and joins those it returns. It relies on
what Keras 3.15's JAX trainer does without documenting it: it fills that
item from `Model.metrics_variables`, shards it like those variables, and
writes it back to them (`jax_state_sync`). A Keras that stops doing so
fails loudly, not silently: `MetricsState.split` raises when a step is
handed another number of values than `metrics_variables` lists, and
`tests/test_backend.py::test_jax_fit_carries_every_optimizer_s_state`
fails, saying why, when `fit` no longer steps the two optimizers.
"""


class MetricsState:
    """The layout of the metrics item of Keras's JAX train state.

    The variables of each metric, then those of each carried optimizer, in
    order.

    Args:
        metrics: the model's `metrics`, whose variables come first.
        optimizers: the optimizers whose variables follow, in order; None
            for one not in use (it carries nothing).
    """

    def __init__(self, metrics, optimizers):
        self.metrics = list(metrics)
        self.optimizers = list(optimizers)

    def _groups(self):
        """The variables of each metric, then of each optimizer (lists)."""
        return [list(metric.variables) for metric in self.metrics] + [
            [] if optimizer is None else list(optimizer.variables)
            for optimizer in self.optimizers
        ]

    @property
    def variables(self):
        """What `Model.metrics_variables` lists: every group, flat."""
        return [variable for group in self._groups() for variable in group]

    def split(self, values):
        """The values of each metric and of each optimizer.

        Args:
            values: the last item of the `state` a step receives.

        Returns:
            `(metric_values, optimizer_values)`: a list of values per
            metric and one per optimizer (empty for one not in use).

        Raises:
            RuntimeError: when `values` does not match `variables`: Keras
                no longer fills that item from `Model.metrics_variables`.
        """
        groups = self._groups()
        expected = sum(len(group) for group in groups)
        if len(values) != expected:
            raise RuntimeError(
                "Keras's JAX trainer no longer carries Model.metrics_variables"
                " as the last item of the train_step state, where the state "
                "of the prior discriminator's and the online probe's "
                f"optimizers rides ({expected} values; see "
                "dim_keras.backend.jax_state). Received: "
                f"len(metrics_variables)={len(values)}"
            )
        parts, start = [], 0
        for group in groups:
            parts.append(list(values[start : start + len(group)]))
            start += len(group)
        return parts[: len(self.metrics)], parts[len(self.metrics) :]

    @staticmethod
    def join(metric_values, optimizer_values):
        """The last item of the `state` a step returns.

        Args:
            metric_values: a list of values per metric.
            optimizer_values: a list of values per optimizer.

        Returns:
            One flat list, in the order of `variables`.
        """
        parts = list(metric_values) + list(optimizer_values)
        return [value for part in parts for value in part]
