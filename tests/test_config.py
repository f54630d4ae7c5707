"""TrainConfig: validation, resolution into a new object, defaults."""

import dataclasses

import pytest

from dim_keras import config as config_module
from dim_keras.config import TrainConfig
from dim_keras.data import ImageDataset


def test_defaults_are_the_reference_local_dim():
    config = TrainConfig()
    assert (config.alpha, config.beta, config.gamma) == (0.0, 1.0, 0.1)
    # The view scheme's settings are left to the resolution.
    assert config.estimator is None and config.batch_size is None
    resolved = config.resolved(ImageDataset("tiny", 32, 2, {},
                                            default_epochs=3))
    assert resolved.estimator == "jsd" and resolved.batch_size == 64
    assert (resolved.views, resolved.scales) == (1, "y-local")
    assert (resolved.score_temperature, resolved.score_clip,
            resolved.score_penalty) == (1.0, 0.0, 0.0)
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


def _filled(config, recipe=None):
    return config.with_recipe(recipe).with_scheme()


def test_an_unset_score_temperature_is_the_square_root_of_the_critic_width():
    unset = TrainConfig(views=2, score_temperature=None).validate()
    # The recipe's 512-unit critic, the reference's 2048 units, or a width
    # that was given.
    assert _filled(unset, {"critic_units": 512}).score_temperature == (
        pytest.approx(22.627417))
    assert _filled(unset).score_temperature == pytest.approx(45.254834)
    given = TrainConfig(views=2, critic_units=64, score_temperature=None)
    assert _filled(given, {"critic_units": 512}).score_temperature == 8.0
    # Concat-and-convolve scores are not dot products: left alone.
    other = TrainConfig(views=2, local_critic="concat_and_convolve",
                        score_temperature=None)
    assert _filled(other).score_temperature == 1.0
    # A temperature that was set stays; one view leaves scores alone.
    assert _filled(TrainConfig(views=2, score_temperature=3.0),
                   {"critic_units": 512}).score_temperature == 3.0
    assert _filled(TrainConfig(critic_units=512)).score_temperature == 1.0


class _Speech:
    """The members of a speech dataset that resolution reads."""

    modality = "audio"
    default_encoder = "wave1d"
    default_epochs = 5
    default_settings = None
    num_classes = 80


def test_two_views_take_nce_and_the_multi_view_recipe_unless_given():
    from dim_keras.data.views import for_crop

    images = ImageDataset("tiny", 32, 2, {}, default_epochs=3)
    # A config file that names the estimator (--config jsd.json).
    config = TrainConfig(views=2, estimator="jsd").resolved(images)
    assert config.views == 2 and config.estimator == "jsd"
    assert config.scales == "y-local,y-conv"
    assert config.batch_size == 32  # two views' default
    assert config.score_temperature == pytest.approx(2048 ** 0.5)  # AMDIM's
    assert (config.score_clip, config.score_penalty) == (20.0, 0.05)
    # Given settings win over the multi-view ones.
    config = TrainConfig(views=2, batch_size=4, score_temperature=1.0,
                         score_clip=0.0, view_crop="resized").resolved(images)
    assert config.estimator == "nce" and config.batch_size == 4
    assert config.score_temperature == 1.0 and config.score_clip == 0.0
    assert config.view_crop == "resized"
    assert for_crop(config.view_crop).describe().startswith(
        "random resized crop")
    # One view of images keeps DIM's settings.
    one = TrainConfig().resolved(images)
    assert (one.estimator, one.batch_size, one.scales) == (
        "jsd", 64, "y-local")
    # A channel split and speech take NCE, but not the image recipe.
    split = TrainConfig(channel_split="luma-chroma").resolved(images)
    assert split.estimator == "nce" and split.batch_size == 64
    speech = TrainConfig().resolved(_Speech())
    assert (speech.views, speech.estimator, speech.batch_size) == (
        2, "nce", 64)  # one pair per speaker, at most 64
    # AMDIM's temperature (the critic's width: 2048, no recipe here), not
    # its clipping.
    assert (speech.score_temperature, speech.score_clip) == (2048 ** 0.5,
                                                             0.0)
    few = _Speech()
    few.num_classes = 6
    assert TrainConfig().resolved(few).batch_size == 6
    assert TrainConfig(batch_size=32).resolved(few).batch_size == 32


def test_library_command_line_and_tuner_resolve_the_same_settings(
        monkeypatch):
    import keras_tuner

    from dim_keras import recipes
    from dim_keras.tuning.tuner import DIMHyperModel
    from tests.test_cli import _config_given

    images = ImageDataset("tiny", 32, 2, {}, default_epochs=3,
                          default_settings=recipes.CIFAR_LIKE)
    library = TrainConfig(views=2).resolved(images)
    cli = _config_given(monkeypatch, ["--views", "2"]).resolved(images)
    assert cli == library
    # A trial whose searched values are the library's trains the same run.
    searched = {name: getattr(library, name) for name in (
        "estimator", "alpha", "beta", "gamma", "lr", "views",
        "score_temperature", "score_clip", "scales")}
    base = TrainConfig().with_recipe(images.default_settings)
    trial = DIMHyperModel(base, searched, epochs_per_trial=3).build(
        keras_tuner.HyperParameters())
    assert trial.resolved(images) == library
    assert (library.batch_size, library.score_penalty) == (32, 0.05)


def test_a_recipe_may_name_its_encoder_and_paper_names_the_reference():
    from dim_keras import recipes

    recipe = dict(recipes.CIFAR_LIKE, encoder="basic64x64")
    large = ImageDataset("tiny", 64, 2, {}, default_encoder="alex64x64",
                         default_epochs=3, default_settings=recipe)
    resolved = TrainConfig().resolved(large)
    assert (resolved.encoder, resolved.views, resolved.lr) == (
        "basic64x64", 2, 1e-3)
    # An encoder given wins over the recipe's.
    assert TrainConfig(encoder="alex64x64").resolved(large).encoder == (
        "alex64x64")
    # The paper's recipe: one view, JSD, lr 1e-4, the 2048-unit critic,
    # crops and flips, and the dataset's own encoder.
    paper = TrainConfig(recipe="paper").resolved(large)
    assert (paper.encoder, paper.views, paper.estimator, paper.lr,
            paper.lr_schedule, paper.critic_units, paper.augment,
            paper.batch_size) == (
        "alex64x64", 1, "jsd", 1e-4, "constant", None, True, 64)
    # The measured recipe keeps its rate constant; a schedule given wins.
    assert resolved.lr_schedule == "constant"
    assert TrainConfig(lr_schedule="cosine").resolved(
        large).lr_schedule == "cosine"
    with pytest.raises(ValueError, match="Received: lr_schedule='step'"):
        TrainConfig(lr_schedule="step").validate()
    with pytest.raises(ValueError, match="Received: recipe='best'"):
        TrainConfig(recipe="best").validate()


def test_64x64_data_trains_the_64x64_recipe_everywhere(monkeypatch):
    import keras_tuner

    from dim_keras import recipes
    from dim_keras.data import registry
    from dim_keras.tuning.tuner import DIMHyperModel
    from tests.test_cli import _config_given

    assert registry.DATASETS["tiny_imagenet"].recipe is recipes.SIXTY_FOUR
    assert registry.DATASETS["stl10"].recipe is recipes.SIXTY_FOUR
    large = ImageDataset("tiny", 64, 2, {}, default_encoder="alex64x64",
                         default_epochs=3,
                         default_settings=recipes.SIXTY_FOUR)
    library = TrainConfig().resolved(large)
    assert (library.encoder, library.views, library.view_crop,
            library.batch_size, library.lr, library.critic_units) == (
        "basic64x64", 2, "resized", 32, 5e-4, 512)
    assert _config_given(monkeypatch, []).resolved(large) == library
    searched = {name: getattr(library, name) for name in (
        "estimator", "alpha", "beta", "gamma", "lr", "views",
        "score_temperature", "score_clip", "scales")}
    base = TrainConfig().with_dataset(large)
    trial = DIMHyperModel(base, searched, epochs_per_trial=3).build(
        keras_tuner.HyperParameters())
    assert trial.resolved(large) == dataclasses.replace(library, epochs=3)
