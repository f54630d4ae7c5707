"""DeepInfoMax: who updates what, the gradient penalty, and that it learns."""

import keras
import numpy as np
import pytest
from keras import ops

from dim_keras import DeepInfoMax
from dim_keras import networks
from dim_keras.data import get_dataset
from tests.helpers import tiny_encoder


def make_model(**kwargs):
    settings = dict(
        estimator="jsd", alpha=0.5, beta=1.0, gamma=0.1, local_critic_units=16
    )
    settings.update(kwargs)
    # Eager steps on TensorFlow: most tests take one or two steps, which
    # cost less run op by op than traced into a graph first (JAX compiles
    # every op on its own when eager: slower there).
    eager = keras.backend.backend() == "tensorflow"
    compile_args = dict(dict(run_eagerly=eager), **settings.pop("compile", {}))
    # The tiny encoder unless a test needs the paper's shapes.
    encoder = settings.pop("encoder", None) or tiny_encoder()
    model = DeepInfoMax(encoder, seed=0, **settings)
    model.compile(jit_compile=False, **compile_args)
    model.build((None, 32, 32, 3))
    model.build_optimizers()
    return model


def weights(variables):
    return [ops.convert_to_numpy(v).copy() for v in variables]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.backend
def test_gradient_penalty_of_a_linear_discriminator_is_its_squared_norm():
    model = make_model()
    linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    w = np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    linear.layers[0].kernel.assign(w)
    samples = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    penalty = model.input_gradient_penalty(linear, ops.convert_to_tensor(samples))
    assert float(ops.convert_to_numpy(penalty)) == pytest.approx(5.25, rel=1e-6)


@pytest.mark.backend
def test_each_optimizer_updates_only_its_own_networks():
    model = make_model(
        compile=dict(
            discriminator_optimizer=keras.optimizers.Adam(learning_rate=0.0)
        )
    )
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3))
    images = images.astype("float32")
    encoder_before = weights(model.encoder_variables)
    critic_before = weights(model.local_critic.trainable_variables)
    disc_before = weights(model.discriminator_variables)
    model.train_on_batch(images)
    assert changed(encoder_before, weights(model.encoder_variables))
    assert changed(critic_before, weights(model.local_critic.trainable_variables))
    # The encoder's loss flows through the discriminator, but only the
    # discriminator's own optimizer (learning rate 0 here) may move it.
    assert not changed(disc_before, weights(model.discriminator_variables))


@pytest.mark.backend
def test_discriminator_trains_on_its_own_loss():
    model = make_model()
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3))
    before = weights(model.discriminator_variables)
    model.train_on_batch(images.astype("float32"))
    assert changed(before, weights(model.discriminator_variables))


@pytest.mark.backend
def test_unused_networks_are_not_built():
    model = make_model(alpha=0.0, gamma=0.0)
    assert model.global_critic is None and model.prior_discriminator is None
    assert model.discriminator_variables == []


@pytest.mark.backend
@pytest.mark.parametrize("estimator", ["jsd", "nce"])
def test_short_training_lowers_the_loss_on_real_data(estimator):
    keras.utils.set_random_seed(0)
    images = get_dataset("digits").training_images()[:256]
    model = make_model(estimator=estimator, gamma=0.0,
                       encoder=networks.basic32x32(),
                       compile=dict(run_eagerly=False))  # 24 steps: traced
    batch = images[:32].astype("float32")

    def objective():
        # Batch statistics (training=True): after 24 steps the moving
        # averages of inference mode still lag far behind the weights.
        return float(
            ops.convert_to_numpy(model.compute_dim_losses(batch, True)["loss"])
        )

    before = objective()
    model.fit(images, batch_size=32, epochs=3, verbose=0, shuffle=True)
    after = objective()
    assert after < before - 0.1 * abs(before)


@pytest.mark.backend
def test_config_round_trip_lists_every_argument():
    model = make_model(estimator="dv", alpha=1.0, beta=0.0, gamma=1.0)
    restored = DeepInfoMax.from_config(model.get_config())
    for name in (
        "estimator", "alpha", "beta", "gamma", "local_critic_units",
        "global_critic_units", "gradient_penalty", "seed",
    ):
        assert getattr(restored, name) == getattr(model, name), name
    assert restored.encoder.name == model.encoder.name


# --- Multi-view DIM ----------------------------------------------------------


def _two_views(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 2, 32, 32, 3)).astype("float32")


def _scalar(x):
    return float(ops.convert_to_numpy(x))


def _cross_view_terms(model, images, clip=0.0):
    """Hand-assembled multi-view terms, from the model's own networks."""
    from dim_keras import objective

    a = model.encoder(images[:, 0], training=False)
    b = model.encoder(images[:, 1], training=False)
    pairs = [(a["local"], b["y"]), (b["local"], a["y"])]
    local = [model.local_critic(lm, y, training=False) for lm, y in pairs]
    glob = [model.global_critic(lm, y, training=False) for lm, y in pairs
            if model.global_critic is not None]
    return {
        "local": [objective.local_mi(objective.soft_clip(s, clip), "nce")
                  for s in local],
        "global": [objective.global_mi(objective.soft_clip(s, clip), "nce")
                   for s in glob],
        "local_scores": local,
        "global_scores": glob,
        "same_view_local": objective.local_mi(
            model.local_critic(a["local"], a["y"], training=False), "nce"),
    }


@pytest.mark.backend
def test_multi_view_scores_each_view_against_the_other_views_y():
    model = make_model(views=2, estimator="nce", alpha=0.5, beta=1.0,
                       gamma=0.0)
    images = _two_views()
    terms, code = model.compute_encoder_losses(images, training=False)
    hand = _cross_view_terms(model, images)
    local = (_scalar(hand["local"][0]) + _scalar(hand["local"][1])) / 2
    glob = (_scalar(hand["global"][0]) + _scalar(hand["global"][1])) / 2
    assert _scalar(terms["local_mi"]) == pytest.approx(local, rel=1e-5)
    assert _scalar(terms["global_mi"]) == pytest.approx(glob, rel=1e-5)
    assert _scalar(terms["loss"]) == pytest.approx(
        -0.5 * glob - 1.0 * local, rel=1e-5)
    # Not the single-view objective on either view.
    assert abs(_scalar(hand["same_view_local"]) - local) > 1e-3
    assert code is None
    # Both directions count alike: swapping the views changes nothing.
    swapped, _ = model.compute_encoder_losses(images[:, ::-1], training=False)
    assert _scalar(swapped["loss"]) == pytest.approx(
        _scalar(terms["loss"]), rel=1e-5)


@pytest.mark.backend
def test_multi_view_soft_clipping_and_score_penalty():
    clip, penalty = 0.5, 0.05
    model = make_model(views=2, estimator="nce", alpha=0.0, beta=1.0,
                       gamma=0.0, score_clip=clip, score_penalty=penalty)
    images = _two_views(seed=1)
    terms, _ = model.compute_encoder_losses(images, training=False)
    hand = _cross_view_terms(model, images, clip=clip)
    local = (_scalar(hand["local"][0]) + _scalar(hand["local"][1])) / 2
    squares = [float(np.mean(np.square(ops.convert_to_numpy(s))))
               for s in hand["local_scores"]]
    assert _scalar(terms["local_mi"]) == pytest.approx(local, rel=1e-5)
    assert _scalar(terms["loss"]) == pytest.approx(
        -local + penalty * sum(squares) / 2, rel=1e-5)
    # Clipping bounds the scores the estimator sees: NCE of clipped scores
    # differs from NCE of the raw ones here (scores exceed 0.5).
    raw = _cross_view_terms(model, images)["local"]
    assert abs(_scalar(raw[0]) - _scalar(hand["local"][0])) > 1e-4


@pytest.mark.backend
def test_score_temperature_divides_the_scores_before_penalty_and_clip():
    temperature, clip, penalty = 4.0, 0.5, 0.05
    model = make_model(views=2, estimator="nce", alpha=0.0, beta=1.0,
                       gamma=0.0, score_temperature=temperature,
                       score_clip=clip, score_penalty=penalty)
    images = _two_views(seed=2)
    terms, _ = model.compute_encoder_losses(images, training=False)
    from dim_keras import objective

    scaled = [ops.convert_to_numpy(s) / temperature
              for s in _cross_view_terms(model, images)["local_scores"]]
    local = np.mean([_scalar(objective.local_mi(
        objective.soft_clip(s, clip), "nce")) for s in scaled])
    squares = np.mean([np.mean(np.square(s)) for s in scaled])
    assert _scalar(terms["local_mi"]) == pytest.approx(local, rel=1e-5)
    assert _scalar(terms["loss"]) == pytest.approx(
        -local + penalty * squares, rel=1e-5)
    # Not the same as leaving the scores alone.
    plain = make_model(views=2, estimator="nce", alpha=0.0, beta=1.0,
                       gamma=0.0, score_clip=clip, score_penalty=penalty)
    plain.set_weights(model.get_weights())
    plain_terms, _ = plain.compute_encoder_losses(images, training=False)
    assert abs(_scalar(plain_terms["loss"]) - _scalar(terms["loss"])) > 1e-3
    restored = DeepInfoMax.from_config(model.get_config())
    assert restored.score_temperature == temperature


@pytest.mark.backend
def test_multi_view_trains_and_round_trips():
    model = make_model(views=2, estimator="nce", score_clip=20.0,
                       score_penalty=0.05)
    before = weights(model.encoder_variables)
    logs = model.train_on_batch(_two_views(n=8), return_dict=True)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert changed(before, weights(model.encoder_variables))
    restored = DeepInfoMax.from_config(model.get_config())
    for name in ("views", "score_clip", "score_penalty"):
        assert getattr(restored, name) == getattr(model, name), name


@pytest.mark.backend
def test_speech_pairs_build_from_one_view_or_two_and_train():
    # A speech view is (samples, 1): rank 2. Its two-view batch shape
    # (2, samples, 1) has an image view's rank, and must not get a second
    # views axis.
    shapes = []
    for shape in ((None, 320, 1), (None, 2, 320, 1)):
        model = DeepInfoMax(networks.wave1d(chunk_length=320), views=2,
                            estimator="nce", local_critic_units=8, gamma=0.0)
        model.compile(jit_compile=False)
        model.build(shape)
        model.build_optimizers()
        shapes.append([tuple(w.shape) for w in model.weights])
    assert shapes[0] == shapes[1]
    pairs = np.random.default_rng(0).normal(size=(4, 2, 320, 1))
    logs = model.train_on_batch(pairs.astype("float32"), return_dict=True)
    assert all(np.isfinite(float(v)) for v in logs.values())


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(views=3), "Received: views=3"),
        (dict(views=2, occlusion=True), "views=2, occlusion=True"),
        (dict(score_clip=-1.0), "Received: score_clip=-1.0"),
        (dict(score_penalty=-0.1), "Received: score_penalty=-0.1"),
        (dict(score_temperature=0.0), "Received: score_temperature=0.0"),
    ],
)
def test_bad_multi_view_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        DeepInfoMax(networks.basic32x32(), **settings)


# --- Predictions across scales -----------------------------------------------


@pytest.mark.backend
def test_random_location_picks_one_location_of_each_image():
    from dim_keras.model import random_location

    rng = np.random.default_rng(0)
    maps = rng.normal(size=(6, 3, 4, 5)).astype("float32")
    picked = ops.convert_to_numpy(
        random_location(ops.convert_to_tensor(maps), keras.random.SeedGenerator(1)))
    assert picked.shape == (6, 5)
    rows = maps.reshape(6, 12, 5)
    for i in range(6):
        distances = np.abs(rows[i] - picked[i]).max(axis=-1)
        assert distances.min() < 1e-6  # one of image i's own locations


@pytest.mark.backend
def test_scales_average_every_prediction_of_both_views(monkeypatch):
    from dim_keras import objective
    from dim_keras import predictions

    # The local-local source location is drawn at random; take the first.
    monkeypatch.setattr(
        predictions, "random_location",
        lambda maps, seed: ops.reshape(maps, (ops.shape(maps)[0], -1,
                                              ops.shape(maps)[-1]))[:, 0])
    model = make_model(views=2, estimator="nce", alpha=0.0, beta=1.0,
                       gamma=0.0, scales="y-local,y-conv,local-local")
    assert model.conv_critic is not None and model.location_critic is not None
    images = _two_views(seed=2)
    terms, _ = model.compute_encoder_losses(images, training=False)
    a = model.encoder(images[:, 0], training=False)
    b = model.encoder(images[:, 1], training=False)
    hand = []
    for view, other in ((a, b), (b, a)):
        channels = ops.shape(other["local"])[-1]
        first = ops.reshape(other["local"], (4, -1, channels))[:, 0]
        for critic, source, target in (
            (model.local_critic, view["local"], other["y"]),
            (model.conv_critic, view["conv"], other["y"]),
            (model.location_critic, view["local"], first),
        ):
            scores = critic(source, target, training=False)
            hand.append(_scalar(objective.local_mi(scores, "nce")))
    assert _scalar(terms["local_mi"]) == pytest.approx(np.mean(hand), rel=1e-5)
    assert _scalar(terms["loss"]) == pytest.approx(-np.mean(hand), rel=1e-5)
    # Each prediction counts: the DIM one alone differs.
    assert abs(np.mean(hand[0::3]) - np.mean(hand)) > 1e-4


@pytest.mark.backend
def test_scales_train_round_trip_and_build_only_their_critics():
    model = make_model(views=2, estimator="nce", scales="y-local,y-conv")
    assert model.location_critic is None
    before = weights(model.conv_critic.trainable_variables)
    model.train_on_batch(_two_views(n=8), return_dict=True)
    assert changed(before, weights(model.conv_critic.trainable_variables))
    restored = DeepInfoMax.from_config(model.get_config())
    assert restored.scales == ("y-local", "y-conv")
    single = make_model(scales="y-conv")  # one view: Y against the conv map
    assert single.local_critic is None and single.conv_critic is not None
    logs = single.train_on_batch(
        np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(
            "float32"), return_dict=True)
    assert np.isfinite(float(logs["local_mi"]))


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(scales="local-local"), "needs views=2"),
        (dict(views=2, scales="y-local,y-huge"), "Unknown scale prediction"),
        (dict(views=2, scales="y-local,y-local"), "each prediction once"),
        (dict(views=2, scales=""), "Received: scales=''"),
    ],
)
def test_bad_scales_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        DeepInfoMax(networks.basic32x32(), **settings)


# --- Two encoders on two channel groups (CMC) ---------------------------------


@pytest.mark.backend
def test_channel_split_scores_each_encoder_against_the_other():
    from dim_keras import objective
    from dim_keras.networks.encoders import build_encoder

    encoder = build_encoder("basic32x32", channel_split="luma-chroma")
    model = DeepInfoMax(encoder, estimator="nce", alpha=0.0, beta=1.0,
                        gamma=0.1, local_critic_units=16, seed=0,
                        channel_split="luma-chroma")
    model.compile(jit_compile=False)
    model.build((None, 32, 32, 3))
    images = np.random.default_rng(3).integers(
        0, 256, (4, 32, 32, 3)).astype("float32")
    terms, code = model.compute_encoder_losses(images, training=False)
    luma, chroma = model.channel_encoders
    a, b = luma(images, training=False), chroma(images, training=False)
    hand = [
        _scalar(objective.local_mi(
            model.local_critic(lm, y, training=False), "nce"))
        for lm, y in ((a["local"], b["y"]), (b["local"], a["y"]))
    ]
    assert _scalar(terms["local_mi"]) == pytest.approx(np.mean(hand), rel=1e-5)
    # Prior matching sees the combined Y: both encoders' side by side.
    combined = np.concatenate([ops.convert_to_numpy(a["y"]),
                               ops.convert_to_numpy(b["y"])], axis=-1)
    np.testing.assert_allclose(ops.convert_to_numpy(code),
                               1 / (1 + np.exp(-combined)), rtol=1e-5,
                               atol=1e-6)
    # Each encoder sees only its channel group: a change of colour at
    # constant luminance leaves the luminance encoder's Y unchanged.
    grey = np.full((2, 32, 32, 3), 128.0, dtype="float32")
    tinted = grey + np.array([10.0, -4.0, -5.0], dtype="float32")
    # 0.299 * 10 - 0.587 * 4 - 0.114 * 5 = 0.072: nearly equal luminance.
    np.testing.assert_allclose(
        ops.convert_to_numpy(luma(grey)["y"]),
        ops.convert_to_numpy(luma(tinted)["y"]), atol=1e-2)
    assert np.abs(ops.convert_to_numpy(chroma(grey)["y"])
                  - ops.convert_to_numpy(chroma(tinted)["y"])).max() > 1e-3
    logs = model.train_on_batch(images, return_dict=True)
    assert np.isfinite(float(logs["loss"]))
    restored = DeepInfoMax.from_config(model.get_config())
    assert restored.channel_split == "luma-chroma"
    assert len(model.weights) == len({id(w) for w in model.weights})


def test_bad_channel_split_settings_are_refused():
    from dim_keras.networks.encoders import build_encoder

    with pytest.raises(ValueError, match="luma_encoder"):
        DeepInfoMax(networks.basic32x32(), channel_split="luma-chroma")
    split = build_encoder("basic32x32", channel_split="luma-chroma")
    with pytest.raises(ValueError, match="views=2"):
        DeepInfoMax(split, channel_split="luma-chroma", views=2)
    with pytest.raises(ValueError, match="Received: channel_split='rgb'"):
        DeepInfoMax(split, channel_split="rgb")


# --- The online probe --------------------------------------------------------


def _probe_pair(**kwargs):
    """A model without the online probe and one with it, same weights."""
    plain = make_model(**kwargs)
    probed = make_model(online_probe_classes=3, **kwargs)
    for source, target in zip(
        plain.encoder_variables + plain.discriminator_variables,
        probed.encoder_variables + probed.discriminator_variables,
    ):
        target.assign(source)
    return plain, probed


@pytest.mark.backend
@pytest.mark.parametrize("views,clean", [(1, False), (2, False), (2, True)])
def test_the_online_probe_leaves_the_encoder_update_unchanged(views, clean):
    """With or without un-augmented images for the probe (`clean`): their
    encoding changes no weight and no batch-norm statistic."""
    plain, probed = _probe_pair(views=views)
    rng = np.random.default_rng(0)
    shape = (8, 2, 32, 32, 3) if views == 2 else (8, 32, 32, 3)
    images = rng.integers(0, 256, shape).astype("float32")
    labels = np.array([0, 1, 2, -1, 0, 1, 2, -1])
    batch = (images, labels)
    if clean:
        batch += (rng.integers(0, 256, (8, 32, 32, 3)).astype("float32"),)
    probe_before = weights(probed.probe_variables)
    plain.train_on_batch(images)
    logs = probed.train_on_batch(*batch, return_dict=True)
    for a, b in zip(weights(plain.encoder_variables),
                    weights(probed.encoder_variables)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(weights(plain.encoder.non_trainable_variables),
                    weights(probed.encoder.non_trainable_variables)):
        np.testing.assert_array_equal(a, b)  # batch-norm statistics
    for a, b in zip(weights(plain.discriminator_variables),
                    weights(probed.discriminator_variables)):
        np.testing.assert_array_equal(a, b)
    assert changed(probe_before, weights(probed.probe_variables))
    assert logs["online_probe_loss"] > 0


@pytest.mark.backend
def test_the_online_probe_learns_from_the_clean_images_not_the_views():
    """Trained on views A with clean images B, the probe takes the step
    that training on B itself gives it (B's features, with B's batch
    statistics), not the one A gives."""
    rng = np.random.default_rng(3)
    views = rng.integers(0, 256, (8, 32, 32, 3)).astype("float32")
    clean = rng.integers(0, 256, (8, 32, 32, 3)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2, 0, -1])
    models = [make_model(online_probe_classes=3) for _ in range(3)]
    for model in models[1:]:
        for source, target in zip(models[0].weights, model.weights):
            target.assign(source)
    with_clean, on_clean, on_views = models
    with_clean.train_on_batch(views, labels, clean)
    on_clean.train_on_batch(clean, labels)
    on_views.train_on_batch(views, labels)
    for a, b in zip(weights(with_clean.probe_variables),
                    weights(on_clean.probe_variables)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert changed(weights(with_clean.probe_variables),
                   weights(on_views.probe_variables))


@pytest.mark.backend
def test_online_probe_loss_of_zero_heads_is_log_classes_per_layer():
    model = make_model(online_probe_classes=4, encoder=networks.basic32x32())
    for variable in model.probe_variables:
        variable.assign(np.zeros(variable.shape, "float32"))
    features = {"y": ops.ones((3, 64)), "conv": ops.ones((3, 4096))}
    # Zero logits: every labelled image's cross-entropy is log(4); the mean
    # over the labelled images, summed over the two heads, is 2 log 4.
    loss = model.compute_probe_losses(features, np.array([1, -1, 3]))
    assert float(ops.convert_to_numpy(loss["online_probe_loss"])) == \
        pytest.approx(2 * np.log(4), rel=1e-5)
    none = model.compute_probe_losses(features, np.array([-1, -1, -1]))
    assert float(ops.convert_to_numpy(none["online_probe_loss"])) == 0.0


@pytest.mark.backend
def test_unlabelled_batches_leave_the_online_probe_alone():
    model = make_model(online_probe_classes=3)
    images = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3))
    before = weights(model.probe_variables)
    model.train_on_batch(images.astype("float32"), np.full(8, -1))
    assert not changed(before, weights(model.probe_variables))
    model.train_on_batch(images.astype("float32"))  # no labels at all
    assert not changed(before, weights(model.probe_variables))


@pytest.mark.backend
def test_online_probe_heads_read_y_and_the_flat_conv_map():
    model = make_model(online_probe_classes=5, encoder=networks.basic32x32())
    heads = model.online_probe_heads
    assert sorted(heads) == ["conv", "y"]
    assert tuple(heads["y"].kernel.shape) == (64, 5)
    assert tuple(heads["conv"].kernel.shape) == (4 * 4 * 256, 5)
    assert model.get_config()["online_probe_classes"] == 5
    assert make_model().online_probe_heads == {}
    with pytest.raises(ValueError, match="online_probe_classes=-1"):
        DeepInfoMax(networks.basic32x32(), online_probe_classes=-1)
