"""Evaluation of a trained encoder: probes, MINE, NDM, baselines, report."""

from dim_keras.evaluation.evaluate import EvaluationConfig
from dim_keras.evaluation.evaluate import evaluate_run
from dim_keras.evaluation.features import extract_features
from dim_keras.evaluation.mine import mine
from dim_keras.evaluation.ndm import ndm
from dim_keras.evaluation.probes import knn_probe
from dim_keras.evaluation.probes import linear_probe
from dim_keras.evaluation.probes import mlp_probe
