"""The three models, their shared base, artifacts and registry."""

from mlobs.models.artifacts import MODEL_CLASSES, MODEL_NAMES, is_saved, load_model, save_model
from mlobs.models.base import BatchPrediction, ModelMetadata, Prediction, TabularModel
from mlobs.models.churn_predictor import ChurnPredictor
from mlobs.models.fraud_detector import FraudDetector
from mlobs.models.price_predictor import PricePredictor
from mlobs.models.registry import ModelRegistry

__all__ = [
    "MODEL_CLASSES",
    "MODEL_NAMES",
    "BatchPrediction",
    "ChurnPredictor",
    "FraudDetector",
    "ModelMetadata",
    "ModelRegistry",
    "Prediction",
    "PricePredictor",
    "TabularModel",
    "is_saved",
    "load_model",
    "save_model",
]
