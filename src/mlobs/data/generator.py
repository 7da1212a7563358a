"""Seeded generators for card transactions (fraud), properties (price) and customers (churn).

Each generator draws features, optionally shifts them (covariate drift), derives the label from the
features through a known relation (optionally changed: concept drift), and finally blanks a few values
(missing data). The same seed always gives the same frame.

>>> df = generate("fraud", 1_000, seed=1)
>>> df.shape
(1000, 12)
>>> bool(0.005 < df["is_fraud"].mean() < 0.08)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from mlobs.models.schema import FeatureSpec, ModelSchema

Rng = np.random.Generator

_EMPTY: Mapping[str, float] = MappingProxyType({})

UNSEEN_PREFIX = "unseen_"

# --------------------------------------------------------------------------------------- schemas

FRAUD = ModelSchema(
    name="fraud",
    task="binary_classification",
    target="is_fraud",
    description="Card transactions; the target is whether the transaction was fraudulent.",
    features=(
        FeatureSpec("amount", "numeric", "Transaction amount", minimum=0.0, example=84.5),
        FeatureSpec(
            "hour", "numeric", "Hour of day (0-23)", integer=True, minimum=0, maximum=23, example=14
        ),
        FeatureSpec(
            "merchant_category",
            "categorical",
            "Merchant category",
            categories=(
                "grocery",
                "restaurant",
                "gas",
                "retail",
                "online",
                "electronics",
                "travel",
                "entertainment",
            ),
            example="grocery",
        ),
        FeatureSpec(
            "card_type",
            "categorical",
            "Card type",
            categories=("debit", "credit", "prepaid"),
            example="debit",
        ),
        FeatureSpec(
            "channel",
            "categorical",
            "Where the card was used",
            categories=("in_store", "online", "atm"),
            example="in_store",
        ),
        FeatureSpec(
            "distance_from_home_km",
            "numeric",
            "Distance from the cardholder's home",
            minimum=0.0,
            example=3.2,
        ),
        FeatureSpec(
            "transactions_last_24h",
            "numeric",
            "Card transactions in the previous 24 h",
            integer=True,
            minimum=0,
            example=3,
        ),
        FeatureSpec(
            "avg_amount_30d",
            "numeric",
            "Mean transaction amount over 30 days",
            minimum=0.0,
            example=62.0,
        ),
        FeatureSpec(
            "account_age_days",
            "numeric",
            "Age of the account in days",
            integer=True,
            minimum=0,
            example=1450,
        ),
        FeatureSpec(
            "customer_age",
            "numeric",
            "Cardholder age in years",
            integer=True,
            minimum=18,
            maximum=110,
            example=42,
        ),
        FeatureSpec(
            "failed_logins_7d",
            "numeric",
            "Failed logins in the last 7 days",
            integer=True,
            minimum=0,
            example=0,
        ),
    ),
)

PRICE = ModelSchema(
    name="price",
    task="regression",
    target="price",
    description="Residential properties; the target is the sale price.",
    features=(
        FeatureSpec(
            "area_sqm",
            "numeric",
            "Living area in square metres",
            minimum=10.0,
            maximum=2000.0,
            example=110.0,
        ),
        FeatureSpec(
            "bedrooms",
            "numeric",
            "Number of bedrooms",
            integer=True,
            minimum=0,
            maximum=20,
            example=3,
        ),
        FeatureSpec(
            "bathrooms",
            "numeric",
            "Number of bathrooms",
            integer=True,
            minimum=0,
            maximum=15,
            example=2,
        ),
        FeatureSpec(
            "year_built",
            "numeric",
            "Year of construction",
            integer=True,
            minimum=1800,
            maximum=2030,
            example=1994,
        ),
        FeatureSpec(
            "distance_to_center_km",
            "numeric",
            "Distance to the city centre",
            minimum=0.0,
            example=6.5,
        ),
        FeatureSpec(
            "lot_size_sqm",
            "numeric",
            "Lot size in square metres (0 for flats)",
            minimum=0.0,
            example=400.0,
        ),
        FeatureSpec(
            "neighborhood",
            "categorical",
            "Neighbourhood",
            categories=(
                "downtown",
                "riverside",
                "old_town",
                "university",
                "suburbs",
                "industrial",
                "hillside",
                "lakeside",
            ),
            example="suburbs",
        ),
        FeatureSpec(
            "property_type",
            "categorical",
            "Kind of property",
            categories=("apartment", "house", "townhouse", "condo"),
            example="house",
        ),
        FeatureSpec(
            "condition",
            "categorical",
            "State of repair",
            categories=("poor", "fair", "good", "excellent"),
            example="good",
        ),
        FeatureSpec(
            "garage_spaces",
            "numeric",
            "Garage spaces",
            integer=True,
            minimum=0,
            maximum=10,
            example=1,
        ),
    ),
)

CHURN = ModelSchema(
    name="churn",
    task="binary_classification",
    target="churned",
    description="Subscription customers; the target is whether the customer left.",
    features=(
        FeatureSpec(
            "tenure_months",
            "numeric",
            "Months as a customer",
            integer=True,
            minimum=0,
            maximum=600,
            example=24,
        ),
        FeatureSpec("monthly_charges", "numeric", "Monthly bill", minimum=0.0, example=70.0),
        FeatureSpec(
            "contract_type",
            "categorical",
            "Contract",
            categories=("month_to_month", "one_year", "two_year"),
            example="month_to_month",
        ),
        FeatureSpec(
            "payment_method",
            "categorical",
            "Payment method",
            categories=("card", "bank_transfer", "electronic_check", "mailed_check"),
            example="card",
        ),
        FeatureSpec(
            "internet_service",
            "categorical",
            "Internet service",
            categories=("dsl", "fiber", "none"),
            example="fiber",
        ),
        FeatureSpec(
            "support_tickets_90d",
            "numeric",
            "Support tickets in the last 90 days",
            integer=True,
            minimum=0,
            example=1,
        ),
        FeatureSpec(
            "num_products",
            "numeric",
            "Products subscribed",
            integer=True,
            minimum=1,
            maximum=20,
            example=2,
        ),
        FeatureSpec(
            "days_since_last_login",
            "numeric",
            "Days since the last login",
            integer=True,
            minimum=0,
            example=5,
        ),
        FeatureSpec(
            "customer_age",
            "numeric",
            "Customer age in years",
            integer=True,
            minimum=18,
            maximum=110,
            example=45,
        ),
        FeatureSpec(
            "satisfaction_score",
            "numeric",
            "Last survey score (1-10)",
            minimum=1.0,
            maximum=10.0,
            example=7.0,
        ),
    ),
)

DATASETS: Mapping[str, ModelSchema] = MappingProxyType(
    {"fraud": FRAUD, "price": PRICE, "churn": CHURN}
)

# --------------------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class DriftSpec:
    """What to change in generated data. Empty means no drift.

    Attributes:
        mean_shift: feature -> shift of its mean, in standard deviations of the undrifted column.
        scale: feature -> factor applied to the column's spread around its mean.
        category_weights: feature -> {category: weight}; categories are redrawn with probabilities
            proportional to their current share times the weight (a missing weight is 1).
        unseen: feature -> share of rows given a category never seen in training.
        missing: feature -> share of rows whose value is blanked, on top of the usual few.
        concept: 0..1, how far the label's relation to the features moves (0: unchanged).
    """

    mean_shift: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    scale: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    category_weights: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    unseen: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    missing: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    concept: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.concept <= 1.0:
            raise ValueError(f"concept must be in [0, 1], got {self.concept}")
        for name, shares in (("unseen", self.unseen), ("missing", self.missing)):
            for col, share in shares.items():
                if not 0.0 <= share <= 1.0:
                    raise ValueError(f"{name}[{col!r}] must be in [0, 1], got {share}")

    @property
    def is_empty(self) -> bool:
        return not (
            self.mean_shift
            or self.scale
            or self.category_weights
            or self.unseen
            or self.missing
            or self.concept
        )

    @classmethod
    def preset(cls, dataset: str, intensity: float) -> DriftSpec:
        """A drift of the given intensity (0..1) for one data set, as the traffic simulator injects it.

        Intensity 0 is no drift; 0.3 moves a third of the features clearly; 1 moves them a lot.
        """
        if not 0.0 <= intensity <= 1.0:
            raise ValueError(f"intensity must be in [0, 1], got {intensity}")
        if intensity == 0:
            return cls()
        k = intensity
        if dataset == "fraud":
            return cls(
                mean_shift={
                    "amount": 2.5 * k,
                    "distance_from_home_km": 2.0 * k,
                    "transactions_last_24h": 2.5 * k,
                    "customer_age": -2.0 * k,
                },
                category_weights={
                    "channel": {"online": 1 + 8 * k},
                    "merchant_category": {"electronics": 1 + 8 * k},
                },
                unseen={"merchant_category": 0.2 * k},
                missing={"avg_amount_30d": 0.1 * k},
                concept=k,
            )
        if dataset == "price":
            return cls(
                mean_shift={
                    "area_sqm": 2.0 * k,
                    "distance_to_center_km": 2.5 * k,
                    "year_built": 2.0 * k,
                    "lot_size_sqm": 1.5 * k,
                },
                category_weights={
                    "neighborhood": {"downtown": 1 + 8 * k},
                    "condition": {"poor": 1 + 8 * k},
                },
                unseen={"neighborhood": 0.2 * k},
                missing={"garage_spaces": 0.1 * k},
                concept=k,
            )
        if dataset == "churn":
            return cls(
                mean_shift={
                    "monthly_charges": 2.0 * k,
                    "support_tickets_90d": 2.5 * k,
                    "days_since_last_login": 2.0 * k,
                    "tenure_months": -1.5 * k,
                },
                category_weights={
                    "contract_type": {"month_to_month": 1 + 8 * k},
                    "payment_method": {"electronic_check": 1 + 8 * k},
                },
                unseen={"payment_method": 0.2 * k},
                missing={"satisfaction_score": 0.1 * k},
                concept=k,
            )
        raise KeyError(dataset)


def inject_drift(df: pd.DataFrame, spec: ModelSchema, drift: DriftSpec, seed: int) -> pd.DataFrame:
    """A copy of ``df`` with ``drift``'s covariate changes applied (labels are left as they are).

    Shifted values are clipped to each feature's physical domain and rounded where it is integer.
    """
    rng = np.random.default_rng(seed)
    out = df.copy()
    _shift_features(out, spec, drift, rng)
    _blank(out, spec, drift.missing, rng)
    return out


def _shift_features(df: pd.DataFrame, spec: ModelSchema, drift: DriftSpec, rng: Rng) -> None:
    for name in set(drift.mean_shift) | set(drift.scale):
        f = spec.feature(name)
        if f.kind != "numeric":
            raise ValueError(f"mean_shift/scale need a numeric feature, {name!r} is categorical")
        x = df[name].to_numpy(dtype=float)
        mu, sd = float(np.nanmean(x)), float(np.nanstd(x))
        x = mu + (x - mu) * drift.scale.get(name, 1.0) + drift.mean_shift.get(name, 0.0) * sd
        df[name] = _fit_domain(x, f)
    for name, weights in drift.category_weights.items():
        f = spec.feature(name)
        col = df[name]
        present = col.notna().to_numpy()
        cats = list(f.categories)
        freq = col.value_counts(normalize=True).reindex(cats, fill_value=0.0).to_numpy()
        w = freq * np.array([weights.get(c, 1.0) for c in cats])
        p = w / w.sum()
        vals = col.to_numpy(dtype=object)
        vals[present] = rng.choice(np.array(cats, dtype=object), size=int(present.sum()), p=p)
        df[name] = vals
    for name, share in drift.unseen.items():
        f = spec.feature(name)
        if f.kind != "categorical":
            raise ValueError(f"unseen needs a categorical feature, {name!r} is numeric")
        hit = rng.random(len(df)) < share
        vals = df[name].to_numpy(dtype=object)
        vals[hit] = rng.choice(
            np.array([f"{UNSEEN_PREFIX}{i}" for i in range(3)], dtype=object), size=int(hit.sum())
        )
        df[name] = vals


def _fit_domain(x: np.ndarray, f: FeatureSpec) -> np.ndarray:
    lo = -np.inf if f.minimum is None else f.minimum
    hi = np.inf if f.maximum is None else f.maximum
    x = np.clip(x, lo, hi)
    return np.round(x) if f.integer else x


def _blank(df: pd.DataFrame, spec: ModelSchema, shares: Mapping[str, float], rng: Rng) -> None:
    for name, share in shares.items():
        spec.feature(name)
        hit = rng.random(len(df)) < share
        if spec.feature(name).kind == "categorical":
            vals = df[name].to_numpy(dtype=object)
            vals[hit] = None
            df[name] = vals
        else:
            df.loc[hit, name] = np.nan


# --------------------------------------------------------------------------------------- generation

# Features that go missing at random in every generated frame, and how often.
_BASE_MISSING: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "fraud": {"avg_amount_30d": 0.02, "distance_from_home_km": 0.02, "merchant_category": 0.01},
        "price": {"lot_size_sqm": 0.03, "year_built": 0.02, "condition": 0.02},
        "churn": {
            "satisfaction_score": 0.04,
            "days_since_last_login": 0.02,
            "payment_method": 0.01,
        },
    }
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _fraud_features(n: int, rng: Rng) -> pd.DataFrame:
    f = FRAUD
    avg30 = rng.lognormal(np.log(55.0), 0.5, n)
    amount = avg30 * rng.lognormal(0.0, 0.6, n)
    return pd.DataFrame(
        {
            "amount": np.round(amount, 2),
            "hour": rng.choice(24, n, p=_hour_profile()).astype(float),
            "merchant_category": rng.choice(
                f.feature("merchant_category").categories,
                n,
                p=[0.25, 0.18, 0.12, 0.15, 0.12, 0.06, 0.05, 0.07],
            ),
            "card_type": rng.choice(f.feature("card_type").categories, n, p=[0.55, 0.38, 0.07]),
            "channel": rng.choice(f.feature("channel").categories, n, p=[0.62, 0.3, 0.08]),
            "distance_from_home_km": np.round(rng.gamma(1.2, 8.0, n), 2),
            "transactions_last_24h": rng.poisson(2.5, n).astype(float),
            "avg_amount_30d": np.round(avg30, 2),
            "account_age_days": np.round(rng.gamma(2.0, 700.0, n)),
            "customer_age": np.clip(np.round(rng.normal(45.0, 14.0, n)), 18, 110),
            "failed_logins_7d": rng.poisson(0.3, n).astype(float),
        }
    )


def _hour_profile() -> np.ndarray:
    h = np.arange(24)
    w = 0.3 + np.exp(-((h - 13.0) ** 2) / 30.0) + 0.5 * np.exp(-((h - 19.0) ** 2) / 8.0)
    return np.asarray(w / w.sum())


def _fraud_label(df: pd.DataFrame, concept: float, rng: Rng) -> np.ndarray:
    ratio = np.log1p(df["amount"].to_numpy()) - np.log1p(df["avg_amount_30d"].to_numpy())
    hour = df["hour"].to_numpy()
    night = ((hour <= 5) | (hour >= 23)).astype(float)
    mc = df["merchant_category"].to_numpy()
    risky_merchant = np.isin(mc, ["electronics", "online", "travel"]).astype(float)
    online = (df["channel"].to_numpy() == "online").astype(float)
    prepaid = (df["card_type"].to_numpy() == "prepaid").astype(float)
    dist = np.log1p(df["distance_from_home_km"].to_numpy())
    burst = df["transactions_last_24h"].to_numpy()
    young_acct = (df["account_age_days"].to_numpy() < 90).astype(float)
    logins = df["failed_logins_7d"].to_numpy()
    # Concept drift: fraud moves from large remote night-time purchases to small in-store ones.
    z = (
        -8.6
        + (2.6 - 3.6 * concept) * ratio
        + 2.0 * night
        + 1.4 * risky_merchant
        + 1.0 * online * (1 - concept)
        + 1.4 * prepaid
        + (0.9 - 0.8 * concept) * dist
        + 0.35 * np.maximum(burst - 3, 0)
        + 1.8 * young_acct
        + 1.2 * logins
        + 2.2 * concept * (1 - online)
    )
    return (rng.random(len(df)) < _sigmoid(z)).astype(int)


def _price_features(n: int, rng: Rng) -> pd.DataFrame:
    f = PRICE
    ptype = rng.choice(f.feature("property_type").categories, n, p=[0.38, 0.37, 0.15, 0.10])
    is_flat = np.isin(ptype, ["apartment", "condo"])
    area = np.clip(rng.normal(115.0, 35.0, n) - 25.0 * is_flat, 15.0, 2000.0)
    bedrooms = np.clip(np.round(area / 35.0 + rng.normal(0, 0.7, n)), 0, 20)
    lot = np.where(is_flat, 0.0, np.round(rng.lognormal(np.log(450.0), 0.5, n)))
    return pd.DataFrame(
        {
            "area_sqm": np.round(area, 1),
            "bedrooms": bedrooms,
            "bathrooms": np.clip(np.round(bedrooms / 2.0 + rng.normal(0.3, 0.5, n)), 1, 15),
            "year_built": np.clip(np.round(2024 - rng.gamma(2.0, 18.0, n)), 1800, 2030),
            "distance_to_center_km": np.round(rng.gamma(2.0, 4.0, n), 2),
            "lot_size_sqm": lot,
            "neighborhood": rng.choice(
                f.feature("neighborhood").categories,
                n,
                p=[0.12, 0.1, 0.1, 0.12, 0.26, 0.08, 0.12, 0.1],
            ),
            "property_type": ptype,
            "condition": rng.choice(f.feature("condition").categories, n, p=[0.1, 0.25, 0.45, 0.2]),
            "garage_spaces": np.where(
                is_flat, rng.binomial(1, 0.3, n), rng.binomial(3, 0.5, n)
            ).astype(float),
        }
    )


_NEIGHBORHOOD_PREMIUM = {
    "downtown": 0.45,
    "riverside": 0.3,
    "old_town": 0.25,
    "university": 0.05,
    "suburbs": 0.0,
    "industrial": -0.3,
    "hillside": 0.15,
    "lakeside": 0.35,
}
_CONDITION_PREMIUM = {"poor": -0.3, "fair": -0.1, "good": 0.0, "excellent": 0.15}


def _price_label(df: pd.DataFrame, concept: float, rng: Rng) -> np.ndarray:
    nb = df["neighborhood"].map(_NEIGHBORHOOD_PREMIUM).fillna(0.0).to_numpy()
    cond = df["condition"].map(_CONDITION_PREMIUM).fillna(0.0).to_numpy()
    age = 2024 - df["year_built"].to_numpy()
    log_price = (
        np.log(3200.0)
        + np.log(df["area_sqm"].to_numpy())
        + (1 - 1.5 * concept) * nb
        + cond
        - (0.025 - 0.05 * concept) * df["distance_to_center_km"].to_numpy()
        - 0.002 * age
        + 0.00012 * np.minimum(df["lot_size_sqm"].to_numpy(), 3000)
        + 0.04 * df["garage_spaces"].to_numpy()
        + 0.03 * df["bathrooms"].to_numpy()
        + 0.1 * concept * (df["property_type"].to_numpy() == "apartment")
        + rng.normal(0.0, 0.1, len(df))
    )
    return np.asarray(np.round(np.exp(log_price), -2), dtype=np.float64)


def _churn_features(n: int, rng: Rng) -> pd.DataFrame:
    f = CHURN
    contract = rng.choice(f.feature("contract_type").categories, n, p=[0.5, 0.28, 0.22])
    internet = rng.choice(f.feature("internet_service").categories, n, p=[0.35, 0.45, 0.2])
    base = np.select([internet == "fiber", internet == "dsl"], [85.0, 60.0], 30.0)
    return pd.DataFrame(
        {
            "tenure_months": np.clip(np.round(rng.gamma(1.6, 20.0, n)), 0, 600),
            "monthly_charges": np.round(np.clip(rng.normal(base, 15.0), 5.0, None), 2),
            "contract_type": contract,
            "payment_method": rng.choice(
                f.feature("payment_method").categories, n, p=[0.32, 0.28, 0.28, 0.12]
            ),
            "internet_service": internet,
            "support_tickets_90d": rng.poisson(1.0, n).astype(float),
            "num_products": np.clip(1 + rng.poisson(1.2, n), 1, 20).astype(float),
            "days_since_last_login": np.round(rng.exponential(8.0, n)),
            "customer_age": np.clip(np.round(rng.normal(44.0, 15.0, n)), 18, 110),
            "satisfaction_score": np.round(np.clip(rng.normal(7.0, 1.8, n), 1.0, 10.0), 1),
        }
    )


def _churn_label(df: pd.DataFrame, concept: float, rng: Rng) -> np.ndarray:
    contract = df["contract_type"].to_numpy()
    m2m = (contract == "month_to_month").astype(float)
    two_year = (contract == "two_year").astype(float)
    echeck = (df["payment_method"].to_numpy() == "electronic_check").astype(float)
    fiber = (df["internet_service"].to_numpy() == "fiber").astype(float)
    tenure = df["tenure_months"].to_numpy()
    sat = df["satisfaction_score"].to_numpy()
    # Concept drift: price sensitivity grows, loyalty of long-tenure customers fades.
    z = (
        -2.0
        + 1.5 * m2m
        - 1.2 * two_year
        + 0.5 * echeck
        + 0.4 * fiber
        - (0.035 - 0.04 * concept) * tenure
        + (0.018 + 0.04 * concept) * (df["monthly_charges"].to_numpy() - 65.0)
        + 0.45 * df["support_tickets_90d"].to_numpy()
        - 0.25 * (df["num_products"].to_numpy() - 2)
        + 0.06 * df["days_since_last_login"].to_numpy()
        - (0.45 - 0.6 * concept) * (sat - 7.0)
    )
    return (rng.random(len(df)) < _sigmoid(z)).astype(int)


_Gen = tuple[Callable[[int, Rng], pd.DataFrame], Callable[[pd.DataFrame, float, Rng], np.ndarray]]
_GENERATORS: Mapping[str, _Gen] = MappingProxyType(
    {
        "fraud": (_fraud_features, _fraud_label),
        "price": (_price_features, _price_label),
        "churn": (_churn_features, _churn_label),
    }
)


def generate(name: str, n: int, seed: int = 0, drift: DriftSpec | None = None) -> pd.DataFrame:
    """``n`` rows of data set ``name`` (features then target), reproducible from ``seed``.

    With ``drift``, features are shifted before the label is drawn, so a covariate shift keeps the
    label's relation (labels follow the moved features) and ``drift.concept`` changes that relation.

    Raises:
        KeyError: unknown data set name.
        ValueError: ``n`` < 1.
    """
    if name not in _GENERATORS:
        raise KeyError(f"unknown data set {name!r}; known: {sorted(_GENERATORS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    spec = DATASETS[name]
    drift = drift or DriftSpec()
    rng = np.random.default_rng(seed)
    features, label = _GENERATORS[name]
    df = features(n, rng)
    _shift_features(df, spec, drift, rng)
    # Labels are drawn from complete features; blanking comes after, as values lost in transit.
    df[spec.target] = label(df, drift.concept, rng)
    _blank(df, spec, _BASE_MISSING[name], rng)
    _blank(df, spec, drift.missing, rng)
    return df[[*spec.feature_names, spec.target]]
