"""How a training batch becomes the views whose features DIM scores.

A view scheme encodes a batch into views (each a dict of the encoder's
feature maps) and says which view's maps are scored against which view's
Y, what the online probe reads (of the views, or of the un-augmented
images where the batch holds them: `ViewScheme.probe_views`) and which Y
prior matching sees:

- `SingleView` (DIM): one view; its local maps are scored against its own
  Y.
- `Occlusion` ("DIM + occlusion"): one view whose Y, in training, comes
  from the images with a random square block set to mid-grey, while its
  local maps come from the clean images.
- `TwoViews` (multi-view DIM, as AMDIM): `[N, 2, ...]` batches, two views
  of each image encoded in one pass; each view's maps are scored against
  the other view's Y.
- `ChannelSplit` (CMC): two encoders see the luminance and the colour of
  one view; each one's maps are scored against the other's Y.

`view_scheme` picks the scheme of `DeepInfoMax`'s settings. (The
augmentation that draws the two views of an image is
`dim_keras.data.views`.)
"""

import keras
from keras import ops

from dim_keras.networks.encoders import channel_group_encoders


def occlude(images, seed, block_fraction=0.5):
    """Sets a random square block of each image to mid-grey (127.5).

    Args:
        images: `[N, H, W, C]` raw images (0-255).
        seed: a `keras.random.SeedGenerator` or int.
        block_fraction: block side as a fraction of the image side.

    Returns:
        float32 images of the same shape; each has one `b x b` block
        (`b = round(block_fraction * H)`), placed uniformly at random
        inside the image, equal to 127.5 (0 after the encoder's scaling).
    """
    images = ops.cast(images, "float32")
    height, width = images.shape[1], images.shape[2]
    block_h = max(1, int(round(block_fraction * height)))
    block_w = max(1, int(round(block_fraction * width)))
    batch = ops.shape(images)[0]
    corners = keras.random.uniform((batch, 2), seed=seed)
    top = ops.floor(corners[:, 0] * (height - block_h + 1))
    left = ops.floor(corners[:, 1] * (width - block_w + 1))
    rows = ops.arange(height, dtype="float32")[None, :]
    cols = ops.arange(width, dtype="float32")[None, :]
    top, left = top[:, None], left[:, None]
    in_rows = ops.logical_and(rows >= top, rows < top + block_h)
    in_cols = ops.logical_and(cols >= left, cols < left + block_w)
    mask = ops.logical_and(in_rows[:, :, None], in_cols[:, None, :])
    return ops.where(mask[..., None], 127.5, images)


def _pick(outputs, keys):
    """The encoder outputs named in `keys`, as a new dict."""
    return {key: outputs[key] for key in keys}


class ViewScheme:
    """How a batch is encoded into views, and which views meet.

    A view is a dict mapping the encoder's output names (`"local"`,
    `"y"`, and `"conv"` where asked for) to one batch of features.
    Subclasses implement `encode` and `prior_y`.

    Args:
        encoder: the Functional encoder, whose outputs include `"local"`
            and `"y"`.
    """

    def __init__(self, encoder):
        self.encoder = encoder

    @property
    def encoders(self):
        """The networks that encode the views: `(encoder,)`."""
        return (self.encoder,)

    @property
    def channel_encoders(self):
        """The luminance and colour encoders of a channel split, or None."""
        return None

    def batch_shape(self, shape):
        """The shape of one example of a batch (no batch axis).

        Args:
            shape: the shape of one example, as given to `build`.

        Returns:
            `shape` as a tuple.
        """
        return tuple(shape)

    def encode(self, images, keys, training=False, seed=None):
        """Encodes a batch into views.

        Args:
            images: a batch of raw images (or sounds).
            keys: the encoder outputs each view keeps.
            training: bool, batch-norm mode (and whether to augment).
            seed: a `keras.random.SeedGenerator` for random draws.

        Returns:
            A list of views, dicts mapping each of `keys` to `[N, ...]`
            features.
        """
        raise NotImplementedError

    def pairs(self, views):
        """Which views meet: each view's maps against the other's Y.

        Args:
            views: the list `encode` returned (or its gathered copy).

        Returns:
            A list of `(view, other)`: `view`'s maps are scored against
            `other`'s Y. One view meets itself; two views meet each other,
            both ways.
        """
        return list(zip(views, reversed(views)))

    def probed(self, views):
        """The views the online probe reads: the first one."""
        return views[:1]

    def probe_views(self, images, keys):
        """The views the online probe reads of un-augmented images.

        Each of `encoders` encodes the images as the online monitors score
        the probe (`dim_keras.online_monitors`): in training mode, with
        the batch's statistics, inside a `keras.StatelessScope` that
        reads the encoders' current variables and discards what the call
        would change (batch-norm moving averages, seed states), so the
        encoder and its training are left exactly as they were.

        Args:
            images: `[N, H, W, 3]` raw images (one view of each image).
            keys: the encoder outputs each view keeps.

        Returns:
            `probed` of the encoders' views: a list of dicts mapping each
            of `keys` to `[N, ...]` features.
        """
        images = ops.cast(images, "float32")
        views = []
        for encoder in self.encoders:
            current = [(v, v.value) for v in encoder.variables]
            with keras.StatelessScope(state_mapping=current):
                views.append(_pick(encoder(images, training=True), keys))
        return self.probed(views)

    def prior_y(self, views):
        """The Y that prior matching sees, `[N', D']`.

        Args:
            views: the list `encode` returned (or its gathered copy).
        """
        raise NotImplementedError


class SingleView(ViewScheme):
    """DIM: one view of each image, scored against itself."""

    def encode(self, images, keys, training=False, seed=None):
        del seed  # nothing random
        return [_pick(self.encoder(images, training=training), keys)]

    def prior_y(self, views):
        return views[0]["y"]


class Occlusion(SingleView):
    """DIM + occlusion: in training, Y comes from occluded images.

    The local maps come from the clean images; Y from the same images with
    one random square block (half the image side) set to mid-grey
    (`occlude`, drawn from `seed`). The encoder runs twice per training
    step; at inference the scheme is `SingleView`'s.
    """

    def encode(self, images, keys, training=False, seed=None):
        views = super().encode(images, keys, training=training)
        if training:
            occluded = occlude(images, seed)
            views[0]["y"] = self.encoder(occluded, training=training)["y"]
        return views


class TwoViews(ViewScheme):
    """Multi-view DIM: `[N, 2, ...]` batches, two views of each image.

    Both views go through the encoder in one pass (one set of batch-norm
    statistics); prior matching sees both views' Y.
    """

    def batch_shape(self, shape):
        """The shape of one example, `(2,) + view`.

        Args:
            shape: `(2,) + view`, or the shape of one view (a view being
                the encoder's input shape: `(H, W, 3)` images,
                `(samples, 1)` speech).

        Returns:
            `(2,) + view`.
        """
        shape = tuple(shape)
        view_rank = len(self.encoder.input.shape) - 1
        if len(shape) == view_rank:
            return (2,) + shape
        return shape

    def encode(self, images, keys, training=False, seed=None):
        del seed  # nothing random
        both = ops.concatenate([images[:, 0], images[:, 1]], axis=0)
        outputs = self.encoder(both, training=training)
        halves = {key: ops.split(outputs[key], 2, axis=0) for key in keys}
        return [{key: halves[key][v] for key in keys} for v in range(2)]

    def prior_y(self, views):
        """Both views' Y, `[2N, D]`."""
        return ops.concatenate([view["y"] for view in views], axis=0)


class ChannelSplit(ViewScheme):
    """CMC: two encoders, on the luminance and the colour of one view.

    Args:
        encoder: a `dim_keras.networks.channel_split_encoder` (or one
            loaded), whose layers `luma_encoder` and `chroma_encoder` are
            the two encoders.

    Raises:
        ValueError: if `encoder` has no such parts.
    """

    def __init__(self, encoder):
        channel_group_encoders(encoder)  # checks that it has both
        super().__init__(encoder)

    @property
    def encoders(self):
        """The luminance and colour encoders."""
        return self.channel_encoders

    @property
    def channel_encoders(self):
        """The luminance and colour encoders, looked up in `encoder`."""
        return channel_group_encoders(self.encoder)

    def encode(self, images, keys, training=False, seed=None):
        del seed  # nothing random
        return [_pick(part(images, training=training), keys)
                for part in self.channel_encoders]

    def probed(self, views):
        """Both encoders' views (the probe reads their features side by
        side)."""
        return views

    def prior_y(self, views):
        """Both encoders' Y side by side, `[N, 2D]`."""
        return ops.concatenate([view["y"] for view in views], axis=-1)


def view_scheme(encoder, views=1, occlusion=False, channel_split="none"):
    """The view scheme of `DeepInfoMax`'s settings.

    The settings are those `DeepInfoMax` accepts (it checks their
    combinations first).

    Args:
        encoder: the Functional encoder.
        views: 1 or 2.
        occlusion: bool.
        channel_split: `"none"` or `"luma-chroma"`.

    Returns:
        `ChannelSplit` for a channel split, else `TwoViews` for two views,
        else `Occlusion` with occlusion, else `SingleView`.

    Raises:
        ValueError: for a channel split of an encoder without its two
            encoders.
    """
    if channel_split != "none":
        return ChannelSplit(encoder)
    if views == 2:
        return TwoViews(encoder)
    if occlusion:
        return Occlusion(encoder)
    return SingleView(encoder)
