"""The catalogue a service works with: every model folder's manifest, and the models loaded from
them. Passed in rather than held globally."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlobs.errors import ModelNotLoaded, NotFound, NotServed
from mlobs.models.artifacts import load_model, model_names, read_manifest, read_metadata
from mlobs.models.base import TabularModel
from mlobs.models.manifest import Manifest
from mlobs.models.watched import WatchedModel

log = logging.getLogger(__name__)


@dataclass
class ModelRegistry:
    """Manifests by name, the loaded models, and why the others did not load.

    ``manifests`` holds every model whose manifest reads (the API's schemas come from it);
    ``models`` the loaded ones; ``errors`` a reason for each model that is not loaded (a model
    with no artifact, "monitor-only", has a manifest and no served model); ``watched`` the
    monitor-only ones as monitoring sees them (task, classes, holdout figures, calibration).
    """

    models: dict[str, TabularModel] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    monitor_only: set[str] = field(default_factory=set)
    watched: dict[str, TabularModel] = field(default_factory=dict)

    @classmethod
    def catalog(cls, model_dir: Path) -> ModelRegistry:
        """The manifests, read at once (no artifact loaded): every model answers "loading"."""
        reg = cls()
        for name in model_names(model_dir):
            try:
                reg.manifests[name] = read_manifest(Path(model_dir) / name)
                reg.errors[name] = "loading"
            except Exception as exc:
                reg.errors[name] = f"unreadable manifest: {type(exc).__name__}: {exc}"
        return reg

    @classmethod
    def load(cls, model_dir: Path, names: list[str] | None = None) -> ModelRegistry:
        """Load every model that can be loaded; record the reason for each that cannot."""
        reg = cls()
        for name in model_names(model_dir) if names is None else names:
            folder = Path(model_dir) / name
            try:
                reg.manifests[name] = manifest = read_manifest(folder)
            except FileNotFoundError:
                reg.errors[name] = f"not found: no manifest under {folder}"
                continue
            except Exception as exc:
                reg.errors[name] = f"unreadable manifest: {type(exc).__name__}: {exc}"
                continue
            if manifest.artifact is None:
                reg.errors[name] = "monitor-only: no artifact to serve"
                reg.monitor_only.add(name)
                try:
                    reg.watched[name] = WatchedModel.of(manifest, read_metadata(folder))
                except Exception as exc:
                    log.warning("%s: metadata unreadable: %s", name, exc)
                    reg.watched[name] = WatchedModel.of(manifest, None)
                continue
            try:
                reg.models[name] = load_model(model_dir, name)
            except FileNotFoundError as exc:
                reg.errors[name] = f"artifact missing: {exc}"
            except Exception as exc:  # a library's own error (LightGBMError, ...) included
                reg.errors[name] = f"unreadable artifact: {type(exc).__name__}: {exc}"
        return reg

    def get(self, name: str) -> TabularModel:
        """The loaded model; NotFound for an unknown name, NotServed (a NotFound) for a
        monitor-only one, ModelNotLoaded for one whose artifact did not load."""
        if name in self.models:
            return self.models[name]
        if name in self.monitor_only:
            raise NotServed(name)
        if name in self.errors:
            raise ModelNotLoaded(name, self.errors[name])
        raise NotFound("model", name)

    def watch(self, name: str) -> TabularModel:
        """The model whose traffic is monitored: a served one, or a monitor-only one (which
        cannot predict); the errors of ``get`` otherwise."""
        if name in self.watched:
            return self.watched[name]
        return self.get(name)

    @property
    def observed(self) -> dict[str, TabularModel]:
        """Every model monitoring follows: served and monitor-only."""
        return {**self.models, **self.watched}

    def __contains__(self, name: object) -> bool:
        return name in self.manifests or name in self.errors

    @property
    def names(self) -> list[str]:
        return sorted({*self.manifests, *self.models, *self.errors})

    @property
    def all_loaded(self) -> bool:
        return not self.errors and bool(self.models)

    def __iter__(self) -> Iterator[TabularModel]:
        return iter(self.models.values())
