"""TrainConfig: validation, resolution into a new object, defaults."""

import dataclasses

import pytest

from dim_keras import config as config_module
from dim_keras.config import TrainConfig
from dim_keras.data import ImageDataset


def test_defaults_are_the_reference_local_dim():
    config = TrainConfig()
    assert (config.alpha, config.beta, config.gamma) == (0.0, 1.0, 0.1)
    assert config.estimator == "jsd" and config.batch_size == 64
    assert config_module.default("lr") is None  # the dataset's recipe
    assert config_module.field_names()[0] == "dataset"


def test_recipe_fills_only_what_is_unset():
    recipe = {"lr": 1e-3, "augment": False, "critic_units": 512,
              "critic_norm": "none"}
    dataset = ImageDataset("tiny", 32, 2, {}, default_epochs=3,
                           default_settings=recipe)
    resolved = TrainConfig().resolved(dataset)
    assert (resolved.lr, resolved.augment, resolved.critic_units,
            resolved.critic_norm) == (1e-3, False, 512, "none")
    given = TrainConfig(lr=5e-4, augment=True, critic_norm="layer")
    resolved = given.resolved(dataset)
    assert (resolved.lr, resolved.augment, resolved.critic_units,
            resolved.critic_norm) == (5e-4, True, 512, "layer")


def test_without_a_recipe_the_reference_settings_apply():
    dataset = ImageDataset("tiny", 64, 2, {}, default_epochs=3)
    resolved = TrainConfig().resolved(dataset)
    assert (resolved.lr, resolved.augment, resolved.critic_units,
            resolved.critic_norm) == (1e-4, True, None, "batch_layer")
    # A recipe's critic normalization never reaches a critic without one.
    plain = ImageDataset("tiny", 32, 2, {}, default_epochs=3,
                         default_settings={"critic_norm": "none"})
    config = TrainConfig(local_critic="concat_and_convolve")
    assert config.resolved(plain).critic_norm == "batch_layer"


def test_view_crop_comes_from_the_recipe_unless_given():
    from dim_keras import recipes

    assert recipes.REFERENCE["view_crop"] == "resized"
    assert recipes.CIFAR_LIKE["view_crop"] == "translate"
    small = ImageDataset("tiny", 32, 2, {}, default_epochs=3,
                         default_settings=recipes.CIFAR_LIKE)
    large = ImageDataset("tiny", 64, 2, {}, default_epochs=3)
    assert TrainConfig(views=2).resolved(small).view_crop == "translate"
    assert TrainConfig(views=2).resolved(large).view_crop == "resized"
    given = TrainConfig(views=2, view_crop="resized")
    assert given.resolved(small).view_crop == "resized"


def test_resolved_fills_the_dataset_defaults_in_a_new_object():
    dataset = ImageDataset("tiny", 32, 2, {}, default_encoder="alex64x64",
                           default_epochs=7)
    config = TrainConfig()
    resolved = config.resolved(dataset)
    assert (resolved.encoder, resolved.epochs) == ("alex64x64", 7)
    assert (config.encoder, config.epochs) == (None, None)
    explicit = TrainConfig(encoder="basic32x32", epochs=2).resolved(dataset)
    assert (explicit.encoder, explicit.epochs) == ("basic32x32", 2)


def test_a_config_is_never_changed_in_place():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3
    assert TrainConfig().replace(epochs=3).epochs == 3


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"estimator": "mine"}, "Received: estimator='mine'"),
        ({"encoder": "vgg"}, "Received: encoder='vgg'"),
        ({"precision": "int8"}, "Received: precision='int8'"),
        ({"distribute": "ring"}, "Received: distribute='ring'"),
        ({"batch_size": 1}, "Received: batch_size=1"),
        ({"critic_units": 0}, "Received: critic_units=0"),
        ({"lr": 0.0}, "Received: lr=0.0"),
        ({"critic_norm": "batch"}, "Received: critic_norm='batch'"),
        ({"local_critic": "concat_and_convolve", "critic_norm": "none"},
         "encode_and_dot critic only"),
        ({"dataset": "mnist"}, "Received: dataset='mnist'"),
        ({"views": 3}, "Received: views=3"),
        ({"view_crop": "zoom"}, "Received: view_crop='zoom'"),
        ({"views": 2, "occlusion": True}, "views=2, occlusion=True"),
        ({"score_clip": -1.0}, "Received: score_clip=-1.0"),
        ({"score_temperature": -2.0}, "Received: score_temperature=-2.0"),
        ({"score_penalty": float("nan")}, "Received: score_penalty=nan"),
        ({"scales": "y-conv,y-huge"}, "Unknown scale prediction"),
        ({"scales": "local-local"}, "needs views=2"),
        ({"channel_split": "lab"}, "Received: channel_split='lab'"),
        ({"channel_split": "luma-chroma", "occlusion": True},
         "does not combine"),
        ({"scales": "y-conv", "beta": 0.0, "alpha": 1.0}, "beta=0"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings).validate()


def test_from_dict_refuses_unknown_keys_and_non_objects():
    assert TrainConfig.from_dict({"seed": 3}).seed == 3
    scales = TrainConfig.from_dict({"scales": ["y-local", "y-conv"]}).scales
    assert scales == "y-local,y-conv"
    with pytest.raises(ValueError, match=r"Received: \['sede'\]"):
        TrainConfig.from_dict({"sede": 3})
    with pytest.raises(ValueError, match="Received: list"):
        TrainConfig.from_dict([1, 2])


def test_an_unset_score_temperature_is_the_square_root_of_the_critic_width():
    unset = TrainConfig(views=2, score_temperature=None).validate()
    # The recipe's 512-unit critic, the reference's 2048 units, or a width
    # that was given.
    assert unset.with_recipe({"critic_units": 512}).score_temperature == (
        pytest.approx(22.627417))
    assert unset.with_recipe().score_temperature == pytest.approx(45.254834)
    given = TrainConfig(critic_units=64, score_temperature=None)
    assert given.with_recipe({"critic_units": 512}).score_temperature == 8.0
    # Concat-and-convolve scores are not dot products: left alone.
    other = TrainConfig(local_critic="concat_and_convolve",
                        score_temperature=None)
    assert other.with_recipe().score_temperature == 1.0
    # A temperature that was set stays.
    assert TrainConfig(score_temperature=3.0).with_recipe(
        {"critic_units": 512}).score_temperature == 3.0
