"""The CLV model reproduces the published CDNOW numbers (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from allegiance.demo import cdnow
from allegiance.insight import clv, history

CALIBRATION_END = date(1997, 9, 30)


@pytest.fixture(scope="module")
def cdnow_summary() -> history.Summary:
    path = cdnow.locate(install=True, name=cdnow.SAMPLE)
    index: dict[str, int] = {}
    customers, days, values = [], [], []
    end = CALIBRATION_END.toordinal()
    for customer, day, _, dollars in cdnow.sample_rows(path):
        ordinal = date.fromisoformat(day).toordinal()
        if ordinal > end:
            continue
        customers.append(index.setdefault(customer, len(index)))
        days.append(ordinal)
        values.append(float(dollars))
    return history.summarise(
        np.array(customers),
        np.array(days),
        np.array(values),
        customers=len(index),
        end_day=end,
        time_unit="week",
    )


def close(value: float, expected: float, relative: float = 0.01) -> bool:
    return abs(value - expected) <= relative * abs(expected)


def test_bgnbd_reproduces_cdnow(cdnow_summary: history.Summary) -> None:
    s = cdnow_summary
    assert s.customers == 2357
    assert int((s.x > 0).sum()) == 946
    model = clv.fit_bgnbd(s.x, s.t_x, s.T)
    assert model.converged
    assert close(model.r, 0.2426)
    assert close(model.alpha, 4.4136)
    assert close(model.a, 0.7929)
    assert close(model.b, 2.4259)
    assert model.log_likelihood == pytest.approx(-9582.43, abs=0.01)
    expected = clv.conditional_expected_purchases(
        model, 39, np.array([2.0]), np.array([30.43]), np.array([38.86])
    )
    assert float(expected[0]) == pytest.approx(1.226, abs=0.0005)


def test_gamma_gamma_reproduces_cdnow(cdnow_summary: history.Summary) -> None:
    s = cdnow_summary
    repeat = s.x > 0
    model = clv.fit_gamma_gamma(s.x[repeat], s.repeat_mean[repeat])
    assert model.converged
    assert close(model.p, 6.25)
    assert close(model.q, 3.74)
    assert close(model.v, 15.44)
    # the population mean spend p·gamma/(q−1) is about 35 dollars
    spend = clv.expected_average_spend(model, np.array([0.0]), np.array([0.0]))
    assert float(spend[0]) == pytest.approx(model.v * model.p / (model.q - 1))


def test_fit_is_the_same_on_grouped_and_raw_rows(cdnow_summary: history.Summary) -> None:
    s = cdnow_summary
    grouped = clv.fit_bgnbd(s.x, s.t_x, s.T)
    raw = clv.fit_bgnbd(s.x, s.t_x, s.T, weights=np.ones(s.customers))
    assert close(grouped.r, raw.r, 1e-4) and close(grouped.b, raw.b, 1e-4)
    assert grouped.log_likelihood == pytest.approx(raw.log_likelihood, abs=1e-6)


def test_p_alive_and_discounting() -> None:
    model = clv.BgNbd(0.2426, 4.4136, 0.7929, 2.4259, 0.0, True)
    x, t_x, T = np.array([0.0, 2.0, 2.0]), np.array([0.0, 30.43, 5.0]), np.array([38.86] * 3)
    alive = clv.p_alive(model, x, t_x, T)
    assert alive[0] == 1.0  # nobody can have dropped out before a repeat purchase
    assert alive[2] < alive[1] < 1.0  # a long silence since the last purchase lowers it
    plain = clv.conditional_expected_purchases(model, 39, x, t_x, T)
    none = clv.discounted_expected_purchases(
        model, horizon=39, annual_discount_rate=0.0, time_unit="week", x=x, t_x=t_x, T=T
    )
    assert np.allclose(plain, none)
    discounted = clv.discounted_expected_purchases(
        model, horizon=39, annual_discount_rate=0.1, time_unit="week", x=x, t_x=t_x, T=T
    )
    assert np.all(discounted < plain)
    # 10 % a year over 39 weeks discounts by between (1.1)^-0.75 and 1
    assert np.all(discounted > plain * 1.1**-0.75)


def test_not_enough_data() -> None:
    with pytest.raises(clv.FitError) as raised:
        clv.fit_bgnbd(np.array([0.0, 1.0]), np.array([0.0, 3.0]), np.array([5.0, 5.0]))
    assert raised.value.code == "not_enough_data"
    with pytest.raises(clv.FitError):
        clv.fit_bgnbd(np.array([1.0, 1.0]), np.array([6.0, 3.0]), np.array([5.0, 5.0]))


def test_same_day_purchases_merge() -> None:
    s = history.summarise(
        np.array([0, 0, 0, 1]),
        np.array([10, 10, 17, 12]),
        np.array([5.0, 7.0, 20.0, 3.0]),
        customers=2,
        end_day=24,
        time_unit="week",
    )
    assert list(s.x) == [1.0, 0.0]
    assert list(s.t_x) == [1.0, 0.0]
    assert list(s.T) == [2.0, 12 / 7]
    assert list(s.repeat_mean) == [20.0, 0.0]  # the first day (5 + 7) is not a repeat
    assert list(s.total) == [32.0, 3.0]
    assert list(s.gaps_of(0)) == [7] and list(s.gaps_of(1)) == []
