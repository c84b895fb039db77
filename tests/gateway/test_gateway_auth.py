"""Authentication: hostile tokens and keys get 401 with WWW-Authenticate; good ones a principal.

Every refused request here names an execution that exists, so a 401 that leaked through to
the runtime would show as a 200 or a 404 instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from triggerflow_temporal.gateway import create_app
from triggerflow_temporal.gateway._config import parse_config

from . import flows
from .conftest import (
    AUDIENCE,
    ENV,
    HS_SECRET,
    ISSUER,
    auth,
    bearer,
    config_document,
    observed,
    start,
    token,
)


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dana", "tenant": "acme", "exp": now + 300}
    claims.update(overrides)
    return claims


def hostile_credentials() -> dict[str, str | None]:
    now = int(time.time())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "missing": None,
        "empty bearer": "Bearer ",
        "basic scheme": "Basic " + base64.b64encode(b"alice:pw").decode(),
        "unknown api key": "Bearer tfk-not-a-key-of-this-gateway",
        "expired": "Bearer " + token(exp=now - 120, iat=now - 600, nbf=now - 600),
        "not yet valid": "Bearer " + token(nbf=now + 600, iat=now),
        "wrong audience": "Bearer " + token(aud="someone-else"),
        "wrong issuer": "Bearer " + token(iss="https://evil.example"),
        "wrong secret": "Bearer " + token(key="x" * 48),
        "alg none": "Bearer " + _unsigned(_claims()),
        "alg None": "Bearer " + _unsigned(_claims(), alg="None"),
        "alg none with a signature": "Bearer " + _unsigned(_claims()) + "c2ln",
        "RS256 for an HS256 issuer": "Bearer "
        + token(
            key=rsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            algorithm="RS256",
        ),
        "HS512": "Bearer " + token(algorithm="HS512", key=HS_SECRET * 2),
        "no exp": "Bearer " + token(exp=None),
        "no sub": "Bearer " + jwt.encode({**_claims(), "sub": None}, HS_SECRET, "HS256"),
        "no tenant": "Bearer " + token(tenant=None),
        "tenant with a quote": "Bearer " + token(tenant="acme' OR '1'='1"),
        "groups not a list": "Bearer " + token(groups={"a": 1}),
        "tampered payload": "Bearer " + _tamper(token(), tenant="globex"),
        "three dots of garbage": "Bearer a.b.c",
    }


def _tamper(value: str, **claims: Any) -> str:
    header, payload, signature = value.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


async def test_hostile_credentials_are_401_and_change_nothing(http, gateway_client):
    view = await start(http)
    execution_id = view["id"]
    interrupt_id = view["pending_interrupts"][0]["id"]
    before = await observed(gateway_client, execution_id)
    for name, header in hostile_credentials().items():
        headers = {} if header is None else {"Authorization": header}
        calls = [
            http.get(f"/v1/executions/{execution_id}", headers=headers),
            http.get("/v1/executions", headers=headers),
            http.post(
                f"/v1/executions/{execution_id}/interrupts/{interrupt_id}/continue",
                json={"value": {"approved": True}},
                headers=headers,
            ),
            http.post(
                f"/v1/executions/{execution_id}/events",
                json={"event": "note", "value": name},
                headers=headers,
            ),
            http.post(f"/v1/executions/{execution_id}/close", headers=headers),
            http.post("/v1/flows/gw_quick/executions", json={"input": 1}, headers=headers),
        ]
        for call in calls:
            response = await call
            assert response.status_code == 401, (name, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith('Bearer realm="triggerflow"')
            problem = response.json()
            assert problem["status"] == 401 and problem["detail"], name
    assert await observed(gateway_client, execution_id) == before


async def test_valid_credentials_identify_the_principal(http):
    for headers, subject, method, groups in [
        (auth("alice"), "alice", "api_key", ["ops"]),
        (bearer(token("dana", groups=["ops", "finance"])), "dana", "jwt", ["ops", "finance"]),
        (bearer(token("erin", groups=None)), "erin", "jwt", []),
        (bearer(token("fay", groups="a b")), "fay", "jwt", ["a", "b"]),
    ]:
        response = await http.post(
            "/v1/flows/gw_quick/executions", json={"input": "x"}, headers=headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["started_by"] == {
            "subject": subject,
            "tenant": "acme",
            "groups": groups,
            "method": method,
        }


# ------------------------------------------------------------------------ JWKS issuers
def _rsa_and_ec() -> tuple[Any, Any, dict[str, Any]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    rsa_jwk.update(kid="rsa-1", use="sig", alg="RS256")
    ec_jwk.update(kid="ec-1", use="sig", alg="ES256")
    return rsa_key, ec_key, {"keys": [rsa_jwk, ec_jwk]}


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A JWKS document served on a loopback port; yields its URL and a mutable holder."""
    holder: dict[str, Any] = {"jwks": {"keys": []}, "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            holder["hits"] += 1
            body = json.dumps(holder["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", holder
    finally:
        server.shutdown()
        server.server_close()


async def test_rs256_and_es256_from_a_jwks_file_and_url(tmp_path, gateway_client, jwks_server):
    rsa_key, ec_key, jwks = _rsa_and_ec()
    url, holder = jwks_server
    holder["jwks"] = jwks
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    document = config_document()
    document["auth"]["jwt"] += [
        {
            "issuer": "https://file.test",
            "audience": AUDIENCE,
            "jwks_file": str(tmp_path / "jwks.json"),
        },
        {"issuer": "https://url.test", "audience": [AUDIENCE, "x"], "jwks_url": url},
    ]
    app = create_app(parse_config(document, env=ENV), gateway_client, flows.ALL)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        for issuer in ("https://file.test", "https://url.test"):
            for key, alg, kid in ((rsa_key, "RS256", "rsa-1"), (ec_key, "ES256", "ec-1")):
                good = token("gina", iss=issuer, key=key, algorithm=alg, headers={"kid": kid})
                response = await client.get("/v1/executions?limit=1", headers=bearer(good))
                assert response.status_code == 200, (issuer, alg, response.text)
                refused = [
                    token("gina", iss=issuer, key=key, algorithm=alg, headers={"kid": "nope"}),
                    token(
                        "gina", iss=issuer, key=key, algorithm=alg, headers={"kid": kid}, aud="x2"
                    ),
                    token("gina", iss=issuer, key=HS_SECRET, headers={"kid": kid}),  # confusion
                    token(
                        "gina",
                        iss=issuer,
                        key=ec_key if alg == "RS256" else rsa_key,
                        algorithm="ES256" if alg == "RS256" else "RS256",
                        headers={"kid": kid},
                    ),
                ]
                for bad in refused:
                    response = await client.get("/v1/executions?limit=1", headers=bearer(bad))
                    assert response.status_code == 401, (issuer, alg, response.text)
    assert holder["hits"] >= 1


async def test_jwks_url_down_is_503(gateway_client):
    rsa_key, _, _ = _rsa_and_ec()
    document = config_document()
    document["auth"]["jwt"].append(
        {"issuer": "https://down.test", "audience": AUDIENCE, "jwks_url": "http://127.0.0.1:1/j"}
    )
    app = create_app(parse_config(document, env=ENV), gateway_client, flows.ALL)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        good = token(iss="https://down.test", key=rsa_key, algorithm="RS256", headers={"kid": "k"})
        response = await client.get("/v1/executions", headers=bearer(good))
    assert response.status_code == 503 and response.headers["retry-after"]


def test_api_keys_are_stored_as_hashes_only():
    config = parse_config(config_document(), env=ENV)
    for api_key in config.api_keys:
        assert len(api_key.sha256) == 64
    key = auth("alice")["Authorization"].split()[1]
    assert key not in repr(config)
    assert hashlib.sha256(key.encode()).hexdigest() in {k.sha256 for k in config.api_keys}
