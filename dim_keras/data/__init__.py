"""Datasets by name and the training input pipeline."""

from dim_keras.data.image_dataset import DatasetError
from dim_keras.data.image_dataset import ImageDataset
from dim_keras.data.registry import DATASETS
from dim_keras.data.registry import check_name
from dim_keras.data.registry import dataset_modality
from dim_keras.data.registry import get_dataset
