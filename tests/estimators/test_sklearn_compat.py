"""scikit-learn conventions: plain __init__, get/set_params, clone, constraints, NotFittedError."""

from __future__ import annotations

import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from titans_ts.estimators import DEFAULTS, TitansForecaster


def test_init_stores_arguments_unvalidated():
    est = TitansForecaster(horizon=-3, variant="nope")  # validated at fit, not here
    assert est.horizon == -3 and est.variant == "nope"


def test_defaults_come_from_the_defaults_table():
    params = TitansForecaster().get_params()
    assert params["d_model"] == DEFAULTS.d_model
    assert params["variant"] == DEFAULTS.variant
    assert params["max_epochs"] == DEFAULTS.max_epochs
    assert params["horizon"] is None and params["lookback"] is None


def test_get_set_params_clone_round_trip():
    est = TitansForecaster(horizon=12, quantiles=[0.1, 0.9], random_state=3)
    params = est.get_params()
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == params
    copy.set_params(horizon=7, d_model=16)
    assert copy.horizon == 7 and copy.d_model == 16
    assert est.horizon == 12  # the original is untouched
    assert TitansForecaster(**params).get_params() == params


def test_clone_of_fitted_forgets_fit(fitted_wide):
    copy = clone(fitted_wide)
    assert not hasattr(copy, "model_")
    with pytest.raises(NotFittedError):
        copy.predict()


@pytest.mark.parametrize(
    "method, args",
    [("predict", ()), ("score", ("df",)), ("cross_validation", ("df",)), ("save", ("path",)),
     ("plot", ())],
)
def test_not_fitted_error(method, args, wide_df, tmp_path):
    est = TitansForecaster()
    real = [wide_df if a == "df" else tmp_path / "m" if a == "path" else a for a in args]
    with pytest.raises(NotFittedError, match="TitansForecaster instance is not fitted yet"):
        getattr(est, method)(*real)


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"variant": "transformer"}, "'variant' parameter of TitansForecaster must be one of"),
        ({"horizon": 0}, "'horizon' parameter of TitansForecaster must be an int in the range"),
        ({"horizon": True}, "'horizon' parameter"),
        ({"learning_rate": 0.0}, "'learning_rate' parameter of TitansForecaster must be"),
        ({"validation_size": 1.5}, "'validation_size' parameter"),
        ({"accelerator": "tpu"}, "'accelerator' parameter"),
        ({"verbose": "yes"}, "'verbose' parameter of TitansForecaster must be a bool"),
        ({"quantiles": [0.9, 0.1]}, "strictly increasing"),
        ({"quantiles": [0.0, 0.5]}, "strictly between 0 and 1"),
        ({"d_model": 10, "n_heads": 4}, "d_model=10 must be divisible by n_heads=4"),
    ],
)
def test_bad_parameters_are_rejected_at_fit(params, fragment, wide_df):
    est = TitansForecaster(**params)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        est.fit(wide_df)
