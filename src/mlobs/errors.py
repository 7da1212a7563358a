"""Domain errors. Each carries its data; ``mlobs.api.errors`` maps them to HTTP statuses in one place."""

from __future__ import annotations


class MlobsError(Exception):
    """Base class of every error mlobs raises on purpose."""


class NotFound(MlobsError):
    """A named thing (model, prediction, alert, ...) does not exist."""

    def __init__(self, kind: str, key: str, *, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind, self.key, self.loc = kind, key, loc


class NotServed(NotFound):
    """A monitor-only model (no artifact): it is watched, but there is nothing to predict with."""

    def __init__(self, model_name: str) -> None:
        super().__init__("model", model_name)
        self.args = (f"model {model_name!r} is monitor-only: it has no artifact to predict with",)


class Conflict(MlobsError):
    """The request is valid but clashes with the current state."""

    def __init__(
        self, message: str, *, current: str | None = None, loc: tuple[str | int, ...] = ()
    ) -> None:
        super().__init__(message)
        self.current, self.loc = current, loc


class AmbiguousId(Conflict):
    """A sender's prediction id known under several models: the request must name the model."""

    def __init__(self, prediction_id: str, models: list[str]) -> None:
        super().__init__(
            f"prediction id {prediction_id!r} is known under the models {sorted(models)}: "
            "name the model",
            current=",".join(sorted(models)),
            loc=("query", "model"),
        )
        self.prediction_id, self.models = prediction_id, sorted(models)


class InvalidInput(MlobsError):
    """Input broke a rule the request schema cannot express; ``loc`` names the field."""

    def __init__(self, loc: tuple[str | int, ...], message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.loc, self.message, self.kind = loc, message, kind


class ModelNotLoaded(MlobsError):
    """A model's artifacts are missing or unreadable."""

    def __init__(self, model_name: str, reason: str) -> None:
        super().__init__(f"model {model_name!r} is not loaded: {reason}")
        self.model_name, self.reason = model_name, reason


class Unavailable(MlobsError):
    """A dependency (the database, ...) cannot answer now; the request may succeed later."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} unavailable: {reason}")
        self.what, self.reason = what, reason
