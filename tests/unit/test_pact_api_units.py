"""The PACT API's building blocks without a server: the token bucket's figures, the client
credentials (kept only as salted digests), what a client may see, and the clients file's errors."""

from __future__ import annotations

import pytest

from tests.support.pact_server import FakeClock
from twin.pact_api.auth import Client, ClientsError, TokenStore, basic_credentials, bearer_token, load_clients
from twin.pact_api.errors import PactError
from twin.pact_api.ratelimit import RateLimiter

SECRET = "a-long-enough-secret-42"


def test_token_bucket_figures():
    """burst 2, 4 tokens/s: two at once, then 1/4 s for the next; after 0.1 s, 0.4 of a token: wait 0.15 s."""
    clock = FakeClock(0.0)
    rl = RateLimiter(rate=4.0, burst=2, clock=clock)
    assert (rl.take("a"), rl.take("a")) == (0.0, 0.0)
    assert rl.take("a") == pytest.approx(0.25)
    assert rl.take("b") == 0.0  # a bucket per key
    clock.advance(0.1)
    assert rl.take("a") == pytest.approx(0.15)
    assert [RateLimiter.retry_after(w) for w in (0.15, 2.0, 2.01)] == ["1", "2", "3"]
    clock.advance(0.15)
    assert rl.take("a") == 0.0
    clock.advance(100.0)  # refills to the burst, not beyond
    assert [rl.take("a") == 0.0 for _ in range(3)] == [True, True, False]
    with pytest.raises(ValueError):
        RateLimiter(rate=0.0, burst=1)


def test_secrets_are_kept_as_digests_only():
    c = Client.make("acme", SECRET, product_ids=["URN:X:Y:1"])
    assert c.check_secret(SECRET) and not c.check_secret(SECRET + "x") and not c.check_secret("")
    assert SECRET not in repr(c) and all(SECRET not in str(v) for v in vars(c).values())
    assert c.digest != Client.make("acme", SECRET).digest  # salted: the same secret, another digest


def test_what_a_client_may_see():
    pf = {"productIds": ["urn:x:y:1"], "companyIds": ["urn:c:d:9"]}
    assert Client.make("p", SECRET, product_ids=["URN:X:Y:1"]).may_see(pf)  # URNs case-insensitive
    assert Client.make("c", SECRET, company_ids=["urn:c:d:9"]).may_see(pf)
    assert not Client.make("n", SECRET, product_ids=["urn:x:y:2"], company_ids=["urn:c:d:8"]).may_see(pf)
    assert Client.make("all", SECRET, everything=True).may_see({})


def test_tokens_expire_and_unknown_ones_are_bad_requests():
    clock = FakeClock()
    registry = load_clients(None, {"PACT_CLIENT_ID": "erp", "PACT_CLIENT_SECRET": SECRET})
    tokens = TokenStore(registry, ttl_s=60.0, clock=clock)
    token = tokens.issue(registry.get("erp"))
    assert tokens.resolve(token).client_id == "erp"
    clock.advance(60.0)
    with pytest.raises(PactError) as exc:
        tokens.resolve(token)
    assert (exc.value.code, exc.value.status) == ("TokenExpired", 401)
    with pytest.raises(PactError) as exc:
        tokens.resolve("never-issued")
    assert (exc.value.code, exc.value.status) == ("BadRequest", 400)


def test_authorization_headers():
    assert bearer_token("Bearer abc.DEF-_~+/=") == "abc.DEF-_~+/="
    assert bearer_token("bearer  abc") == "abc"
    for bad in (None, "", "Bearer", "Bearer a b", "Basic abc", "Bearer ä"):
        with pytest.raises(PactError):
            bearer_token(bad)
    # RFC 6749 2.3.1: each part form-urlencoded before base64 ("a%3Ab" is the id "a:b")
    assert basic_credentials("Basic YSUzQWI6cyUyMHQ=") == ("a:b", "s t")
    assert basic_credentials("Basic !!!") is None and basic_credentials("Bearer x") is None


def test_clients_file_and_environment(tmp_path):
    f = tmp_path / "clients.yaml"
    f.write_text("clients:\n  - client_id: acme\n    secret_env: ACME\n    product_ids: [urn:x:y:1]\n"
                 "  - client_id: beta\n    secret: beta-secret-0123456789\n    company_ids: [urn:c:d:9]\n")
    registry = load_clients(f, {"ACME": SECRET, "PACT_CLIENT_ID": "erp", "PACT_CLIENT_SECRET": SECRET})
    assert len(registry) == 3
    assert registry.authenticate("acme", SECRET).client_id == "acme"
    assert registry.authenticate("acme", "beta-secret-0123456789") is None
    assert registry.authenticate("nobody", SECRET) is None
    assert registry.get("erp").everything and not registry.get("acme").everything
    for text, env, message in (
            ("clients: []\n", {}, "expected 'clients:' with a list of clients"),
            ("clients:\n  - {client_id: a, secret: short, product_ids: [urn:x:y:1]}\n", {}, "shorter than 16"),
            ("clients:\n  - {client_id: a, secret: " + SECRET + ", secret_env: X, product_ids: [urn:x:y:1]}\n", {},
             "exactly one of secret or secret_env"),
            ("clients:\n  - {client_id: 'a:b', secret: " + SECRET + ", product_ids: [urn:x:y:1]}\n", {}, "without ':'"),
            ("clients:\n  - {client_id: a, secret: " + SECRET + ", product_ids: urn:x:y:1}\n", {}, "expected a list"),
            ("clients:\n  - {client_id: a, secret: " + SECRET + ", product_ids: [urn:x:y:1]}\n"
             "  - {client_id: a, secret: " + SECRET + ", product_ids: [urn:x:y:1]}\n", {}, "client_id given twice"),
            ("clients:\n  - {client_id: erp, secret: " + SECRET + ", product_ids: [urn:x:y:1]}\n",
             {"PACT_CLIENT_ID": "erp", "PACT_CLIENT_SECRET": SECRET}, "is also in"),
            ("clients: [\n", {}, "not a YAML clients file")):
        f.write_text(text)
        with pytest.raises(ClientsError, match=message) as exc:
            load_clients(f, env)
        assert str(exc.value).startswith(("PACT_CLIENT_ID", str(f)))
    with pytest.raises(ClientsError, match="cannot read the clients file"):
        load_clients(tmp_path / "missing.yaml", {})


def test_a_clients_file_with_secrets_others_can_read_is_warned_of(tmp_path, caplog):
    f = tmp_path / "clients.yaml"
    f.write_text(f"clients:\n  - {{client_id: a, secret: {SECRET}, product_ids: [urn:x:y:1]}}\n")
    f.chmod(0o644)
    load_clients(f, {})
    assert "holds client secrets and other users may read it" in caplog.text and SECRET not in caplog.text
    caplog.clear()
    f.chmod(0o600)
    load_clients(f, {})
    assert caplog.text == ""
