"""The set of loaded models a service works with, passed in rather than held globally."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlobs.errors import ModelNotLoaded, NotFound
from mlobs.models.artifacts import MODEL_NAMES, load_model
from mlobs.models.base import TabularModel


@dataclass
class ModelRegistry:
    """Loaded models by name, and why the others did not load."""

    models: dict[str, TabularModel] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def loading(cls, names: tuple[str, ...] = MODEL_NAMES) -> ModelRegistry:
        """The registry before loading finishes: every model answers "loading" (a 503)."""
        return cls(errors=dict.fromkeys(names, "loading"))

    @classmethod
    def load(cls, model_dir: Path, names: tuple[str, ...] = MODEL_NAMES) -> ModelRegistry:
        """Load every named model that can be loaded; record the reason for each that cannot."""
        reg = cls()
        for name in names:
            try:
                reg.models[name] = load_model(model_dir, name)
            except FileNotFoundError:
                reg.errors[name] = f"not trained: no artifacts under {Path(model_dir) / name}"
            except Exception as exc:  # a library's own error (LightGBMError, ...) included
                reg.errors[name] = f"unreadable artifacts: {type(exc).__name__}: {exc}"
        return reg

    def get(self, name: str) -> TabularModel:
        """The loaded model, or NotFound for an unknown name, ModelNotLoaded for a known one."""
        if name in self.models:
            return self.models[name]
        if name in self.errors:
            raise ModelNotLoaded(name, self.errors[name])
        raise NotFound("model", name)

    @property
    def names(self) -> list[str]:
        return list(MODEL_NAMES)

    @property
    def all_loaded(self) -> bool:
        return not self.errors and bool(self.models)

    def __iter__(self) -> Iterator[TabularModel]:
        return iter(self.models.values())
