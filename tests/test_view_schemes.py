"""View schemes: how a batch becomes views, and which views meet."""

import keras
import numpy as np
import pytest
from keras import ops

from dim_keras import view_schemes
from dim_keras.view_schemes import ChannelSplit
from dim_keras.view_schemes import Occlusion
from dim_keras.view_schemes import SingleView
from dim_keras.view_schemes import TwoViews
from dim_keras.view_schemes import ViewScheme
from dim_keras.view_schemes import view_scheme

# Every test here depends on the Keras backend: CI runs them on each.
pytestmark = pytest.mark.backend

KEYS = ("local", "conv", "y")


def _encoder(name="encoder", channels=(0, 1, 2)):
    """Transparent features of `[N, 4, 4, 3]` images: `local` the chosen
    channels themselves, `conv` their 2x2 means, `y` their image means."""
    images = keras.Input((4, 4, 3))
    picked = keras.layers.Lambda(
        lambda x: ops.take(x, list(channels), axis=-1))(images)
    outputs = {
        "local": keras.layers.Identity()(picked),
        "conv": keras.layers.AveragePooling2D(2)(picked),
        "y": keras.layers.GlobalAveragePooling2D()(picked),
    }
    return keras.Model(images, outputs, name=name)


def _split_encoder():
    """A combined model holding `luma_encoder` (channel 0) and
    `chroma_encoder` (channels 1 and 2)."""
    luma = _encoder("luma_encoder", channels=(0,))
    chroma = _encoder("chroma_encoder", channels=(1, 2))
    images = keras.Input((4, 4, 3))
    a, b = luma(images), chroma(images)
    outputs = {k: keras.layers.Concatenate()([a[k], b[k]]) for k in KEYS}
    return keras.Model(images, outputs, name="split")


def _images(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x)


def test_single_view_scores_its_maps_against_its_own_y():
    scheme = SingleView(_encoder())
    images = _images((3, 4, 4, 3))
    views = scheme.encode(images, ("local", "y"))
    assert len(views) == 1 and sorted(views[0]) == ["local", "y"]
    np.testing.assert_allclose(numpy(views[0]["local"]), images)
    np.testing.assert_allclose(numpy(views[0]["y"]),
                               images.mean(axis=(1, 2)), rtol=1e-5)
    [(view, other)] = scheme.pairs(views)
    assert view is views[0] and other is views[0]
    assert scheme.probed(views) == views
    assert scheme.prior_y(views) is views[0]["y"]
    assert scheme.batch_shape([4, 4, 3]) == (4, 4, 3)
    assert scheme.encoders == (scheme.encoder,)
    assert scheme.channel_encoders is None


def test_occlusion_takes_y_from_occluded_images_in_training_only(
        monkeypatch):
    scheme = Occlusion(_encoder())
    images = _images((3, 4, 4, 3))
    seen = []

    def blank(x, seed):
        seen.append(seed)
        return ops.zeros_like(x)

    monkeypatch.setattr(view_schemes, "occlude", blank)
    [view] = scheme.encode(images, KEYS, training=True, seed="the seed")
    assert seen == ["the seed"]
    np.testing.assert_allclose(numpy(view["local"]), images)  # clean
    np.testing.assert_allclose(numpy(view["conv"]),
                               numpy(ops.average_pool(images, 2, 2)),
                               rtol=1e-5)
    np.testing.assert_array_equal(numpy(view["y"]), np.zeros((3, 3)))
    [view] = scheme.encode(images, KEYS, training=False, seed="the seed")
    assert seen == ["the seed"]  # no draw at inference
    np.testing.assert_allclose(numpy(view["y"]), images.mean(axis=(1, 2)),
                               rtol=1e-5)


def test_occlusion_draws_its_block_from_the_seed():
    scheme = Occlusion(_encoder())
    images = _images((3, 4, 4, 3))
    [view] = scheme.encode(images, KEYS, training=True,
                           seed=keras.random.SeedGenerator(1))
    expected = numpy(view_schemes.occlude(
        images, keras.random.SeedGenerator(1))).mean(axis=(1, 2))
    np.testing.assert_allclose(numpy(view["y"]), expected, rtol=1e-5)
    assert np.abs(expected - images.mean(axis=(1, 2))).max() > 1.0


def test_two_views_meet_each_other_both_ways():
    scheme = TwoViews(_encoder())
    images = _images((3, 2, 4, 4, 3))
    views = scheme.encode(images, ("local", "y"))
    assert len(views) == 2
    for v in range(2):
        np.testing.assert_allclose(numpy(views[v]["local"]), images[:, v])
        np.testing.assert_allclose(numpy(views[v]["y"]),
                                   images[:, v].mean(axis=(1, 2)), rtol=1e-5)
    pairs = scheme.pairs(views)
    assert len(pairs) == 2
    assert pairs[0][0] is views[0] and pairs[0][1] is views[1]
    assert pairs[1][0] is views[1] and pairs[1][1] is views[0]
    assert scheme.probed(views) == views[:1]
    np.testing.assert_allclose(
        numpy(scheme.prior_y(views)),
        np.concatenate([images[:, 0], images[:, 1]]).mean(axis=(1, 2)),
        rtol=1e-5)  # both views' Y, one after the other
    assert scheme.batch_shape((4, 4, 3)) == (2, 4, 4, 3)  # one view's
    assert scheme.batch_shape((2, 4, 4, 3)) == (2, 4, 4, 3)


def test_channel_split_meets_each_encoder_with_the_other():
    encoder = _split_encoder()
    scheme = ChannelSplit(encoder)
    luma, chroma = scheme.channel_encoders
    assert (luma.name, chroma.name) == ("luma_encoder", "chroma_encoder")
    assert scheme.encoders == (luma, chroma)
    images = _images((3, 4, 4, 3))
    views = scheme.encode(images, ("local", "y"))
    np.testing.assert_allclose(numpy(views[0]["local"]), images[..., :1])
    np.testing.assert_allclose(numpy(views[1]["local"]), images[..., 1:])
    pairs = scheme.pairs(views)
    assert len(pairs) == 2
    assert pairs[0][0] is views[0] and pairs[0][1] is views[1]
    assert pairs[1][0] is views[1] and pairs[1][1] is views[0]
    assert scheme.probed(views) == views  # both encoders' features
    np.testing.assert_allclose(numpy(scheme.prior_y(views)),
                               images.mean(axis=(1, 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="luma_encoder"):
        ChannelSplit(_encoder())


def test_probe_views_use_batch_statistics_and_change_nothing():
    """The online probe's encoding of clean images: training-mode batch
    norm (the batch's own statistics), every moving statistic unchanged."""
    from tests.helpers import tiny_encoder

    encoder = tiny_encoder()
    images = _images((6, 32, 32, 3), seed=1)
    before = [numpy(v).copy() for v in encoder.non_trainable_variables]
    views = TwoViews(encoder).probe_views(images, ("y", "conv"))
    for old, new in zip(before, encoder.non_trainable_variables):
        np.testing.assert_array_equal(old, numpy(new))
    assert len(views) == 1 and set(views[0]) == {"y", "conv"}
    inference = encoder(images, training=False)["y"]
    batch_statistics = encoder(images, training=True)["y"]
    np.testing.assert_allclose(numpy(views[0]["y"]), numpy(batch_statistics),
                               rtol=1e-4, atol=1e-4)
    assert not np.allclose(numpy(views[0]["y"]), numpy(inference), atol=1e-3)


def test_channel_split_probe_views_read_both_encoders():
    images = _images((3, 4, 4, 3))
    views = ChannelSplit(_split_encoder()).probe_views(images, ("local",))
    assert len(views) == 2
    np.testing.assert_allclose(numpy(views[0]["local"]), images[..., :1])
    np.testing.assert_allclose(numpy(views[1]["local"]), images[..., 1:])


def test_the_base_scheme_leaves_encoding_to_its_subclasses():
    scheme = ViewScheme(_encoder())
    with pytest.raises(NotImplementedError):
        scheme.encode(_images((1, 4, 4, 3)), KEYS)
    with pytest.raises(NotImplementedError):
        scheme.prior_y([])


@pytest.mark.parametrize(
    "settings, expected",
    [
        (dict(), SingleView),
        (dict(occlusion=True), Occlusion),
        (dict(views=2), TwoViews),
        (dict(channel_split="luma-chroma"), ChannelSplit),
    ],
)
def test_view_scheme_picks_the_scheme_of_the_settings(settings, expected):
    encoder = (_split_encoder() if "channel_split" in settings
               else _encoder())
    scheme = view_scheme(encoder, **settings)
    assert type(scheme) is expected
    assert scheme.encoder is encoder
