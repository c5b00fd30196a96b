"""The ``events:`` block of a clients file (twin/pact_api/delivery.py): what it takes, and one-line
errors naming the file, the client and the field."""

from __future__ import annotations

import pytest

from twin.pact_api.delivery import Recipient, RecipientError, load_recipients, parse_recipient

ENV = {"EV_SECRET": "customer-side-secret"}


def test_defaults_and_explicit_endpoints():
    r = parse_recipient("acme", {"url": "https://pact.acme.example:8443/3/events", "client_id": "plant-1",
                                 "secret_env": "EV_SECRET"}, "f: client 'acme'.events", ENV)
    assert r == Recipient("acme", "https://pact.acme.example:8443/3/events", "https://pact.acme.example:8443", None,
                          "plant-1", "customer-side-secret")
    assert "customer-side-secret" not in repr(r)
    r = parse_recipient("acme", {"url": "https://pact.acme.example/3/events", "auth_base_url": "https://id.acme.example/",
                                 "token_url": "https://id.acme.example/oauth/token", "client_id": "p", "secret": "s"},
                        "w", ENV)
    assert (r.auth_base_url, r.token_url, r.secret) == ("https://id.acme.example", "https://id.acme.example/oauth/token", "s")


@pytest.mark.parametrize("block, message", [
    ({"url": "http://pact.acme.example/3/events", "client_id": "p", "secret": "s"}, "W.url: expected an https:// URL"),
    ({"url": "https://a.example/3/events", "token_url": "ftp://x", "client_id": "p", "secret": "s"},
     "W.token_url: expected an https:// URL"),
    ({"url": "https://a.example/3/events", "secret": "s"}, "W.client_id: expected the plant's client id"),
    ({"url": "https://a.example/3/events", "client_id": "p"}, "W: give exactly one of secret or secret_env"),
    ({"url": "https://a.example/3/events", "client_id": "p", "secret": "s", "secret_env": "EV_SECRET"},
     "give exactly one of secret or secret_env"),
    ({"url": "https://a.example/3/events", "client_id": "p", "secret_env": "NOT_SET"},
     "W.secret_env: the environment variable 'NOT_SET' is not set"),
    ({"url": "https://a.example/3/events", "client_id": "p", "secret": "s", "colour": "red"}, "W: unknown field 'colour'"),
    ("https://a.example/3/events", "W: expected a mapping"),
])
def test_errors_name_the_field(block, message):
    with pytest.raises(RecipientError, match=message):
        parse_recipient("acme", block, "W", ENV)


def test_load_recipients_from_a_clients_file(tmp_path):
    f = tmp_path / "clients.yaml"
    f.write_text("clients:\n  - client_id: acme\n    secret: acme-secret-0123456789\n    product_ids: [urn:a:b:c]\n"
                 "    events: {url: 'https://pact.acme.example/3/events', client_id: plant-1, secret_env: EV_SECRET}\n"
                 "  - client_id: beta\n    secret: beta-secret-0123456789\n    product_ids: [urn:a:b:d]\n")
    assert list(load_recipients(f, ENV)) == ["acme"]
    assert load_recipients(None, ENV) == {}
    f.write_text("clients:\n  - client_id: acme\n    events: {url: 'http://x.example/3/events'}\n")
    with pytest.raises(RecipientError, match=f"{f}: client 'acme'.events.url: expected an https:// URL"):
        load_recipients(f, ENV)
