"""Encoders, critics and the prior discriminator."""

from dim_keras.networks.critics import ConcatAndConvolveCritic
from dim_keras.networks.critics import EncodeAndDotCritic
from dim_keras.networks.critics import GlobalCritic
from dim_keras.networks.critics import LOCAL_CRITICS
from dim_keras.networks.critics import MIEmbedding
from dim_keras.networks.critics import build_local_critic
from dim_keras.networks.encoders import AUDIO_ENCODERS
from dim_keras.networks.encoders import ENCODER_IMAGE_SIZE
from dim_keras.networks.encoders import ENCODERS
from dim_keras.networks.encoders import alex64x64
from dim_keras.networks.encoders import basic32x32
from dim_keras.networks.encoders import basic64x64
from dim_keras.networks.encoders import build_encoder
from dim_keras.networks.encoders import wave1d
from dim_keras.networks.prior import build_prior_discriminator
