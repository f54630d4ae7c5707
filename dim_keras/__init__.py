"""dim_keras: Deep InfoMax in Keras 3."""

from dim_keras import estimators
from dim_keras import networks
from dim_keras import objective
from dim_keras.estimators import estimate
from dim_keras.export import extract_features
from dim_keras.export import load_encoder
from dim_keras.model import DeepInfoMax

__version__ = "0.1.0"
