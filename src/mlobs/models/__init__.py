"""Models: their schema, the algorithms mlobs trains and loads, artifacts and the loaded set."""

from mlobs.models.artifacts import ALGORITHMS, is_saved, load_model, model_names, save_model
from mlobs.models.base import BatchPrediction, ModelMetadata, Prediction, TabularModel
from mlobs.models.forest_model import RandomForestModel
from mlobs.models.lightgbm_model import LightGBMModel
from mlobs.models.registry import ModelRegistry
from mlobs.models.schema import FeatureSpec, ModelSchema
from mlobs.models.xgboost_model import XGBoostModel

__all__ = [
    "ALGORITHMS",
    "BatchPrediction",
    "FeatureSpec",
    "LightGBMModel",
    "ModelMetadata",
    "ModelRegistry",
    "ModelSchema",
    "Prediction",
    "RandomForestModel",
    "TabularModel",
    "XGBoostModel",
    "is_saved",
    "load_model",
    "model_names",
    "save_model",
]
