"""Contract of auth.py: which header carries the key, and how a key is recognised."""

from __future__ import annotations

import hmac

import pytest

from glpi_gateway import auth
from glpi_gateway.auth import ApiKeyRejected, ApiKeys, presented_key

SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"
MONITOR_KEY = "monitor-key-0123456789abcdefghijklmnopqr"
KEYS = ApiKeys((("site-principal", SITE_KEY), ("zabbix", MONITOR_KEY)))


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"Authorization": f"Bearer {SITE_KEY}"}, SITE_KEY),
        ({"Authorization": f"bearer   {SITE_KEY}  "}, SITE_KEY),
        ({"X-API-Key": SITE_KEY}, SITE_KEY),
        ({"X-API-Key": f"  {SITE_KEY} "}, SITE_KEY),
        ({"Authorization": f"Bearer {SITE_KEY}", "X-API-Key": MONITOR_KEY}, SITE_KEY),
        ({"Authorization": f"Basic {SITE_KEY}", "X-API-Key": MONITOR_KEY}, MONITOR_KEY),
        ({"Authorization": "Bearer", "X-API-Key": MONITOR_KEY}, MONITOR_KEY),
        ({"Authorization": "Bearer "}, None),
        ({"Authorization": SITE_KEY}, None),
        ({"X-API-Key": "   "}, None),
        ({}, None),
    ],
)
def test_key_comes_from_a_bearer_authorization_else_from_x_api_key(headers, expected):
    assert presented_key(headers) == expected


def test_each_key_is_recognised_by_its_name():
    assert KEYS.identify(SITE_KEY) == "site-principal"
    assert KEYS.identify(MONITOR_KEY) == "zabbix"


@pytest.mark.parametrize("guess", ["", SITE_KEY[:-1], SITE_KEY + "x", SITE_KEY.upper(), "site-principal", "é" * 40])
def test_a_wrong_key_is_rejected_as_presented(guess):
    with pytest.raises(ApiKeyRejected) as caught:
        KEYS.identify(guess)
    assert caught.value.presented is True


def test_no_key_is_rejected_as_missing():
    with pytest.raises(ApiKeyRejected) as caught:
        KEYS.identify(None)
    assert caught.value.presented is False


def test_every_configured_key_is_compared_in_constant_time_even_after_a_match(monkeypatch):
    compared = []
    real_compare = hmac.compare_digest

    def counting_compare(a, b):
        compared.append((len(a), len(b)))
        return real_compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting_compare)
    KEYS.identify(SITE_KEY)  # the first key matches
    with pytest.raises(ApiKeyRejected):
        KEYS.identify("wrong")
    # Two keys, two lookups: every key compared each time, always as equal-length digests.
    assert compared == [(32, 32)] * 4


def test_no_configured_keys_means_the_check_is_off():
    assert ApiKeys(()).enabled is False
    assert KEYS.enabled is True
