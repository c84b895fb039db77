"""The gateway's config file: every bad value names its culprit; unsafe setups refuse to start."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from triggerflow_temporal.gateway import GatewayConfigError, load_config, serve
from triggerflow_temporal.gateway._config import (
    EXAMPLE_API_KEY,
    EXAMPLE_SECRETS,
    check_bind,
    is_loopback,
    parse_config,
)
from triggerflow_temporal.gateway._jsonpath import JSONPath, JSONPathError

from . import flows
from .conftest import ENV, config_document

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"


def test_the_test_config_parses():
    config = parse_config(config_document(), env=ENV)
    assert config.has_auth and len(config.api_keys) == 3 and len(config.jwt) == 1
    assert config.webhooks["payments"].correlation_key.steps == ("data", "invoice_id")
    assert config.max_body_bytes == 2 * 1024 * 1024


def test_yaml_and_json_files_and_the_environment_fallback(tmp_path):
    import yaml

    document = config_document()
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "g.json").write_text(json.dumps(document))
    from_yaml = load_config(tmp_path / "g.yaml", env=ENV)
    from_json = load_config(tmp_path / "g.json", env=ENV)
    from_env = load_config(
        None, env={**ENV, "TRIGGERFLOW_GATEWAY_CONFIG": str(tmp_path / "g.yaml")}
    )
    assert from_yaml.api_keys == from_json.api_keys == from_env.api_keys
    assert load_config(None, env={}).has_auth is False


@pytest.mark.parametrize(
    ("mutate", "culprit"),
    [
        (lambda d: d["auth"]["jwt"][0].pop("issuer"), r"auth\.jwt\[0\]\.issuer"),
        (lambda d: d["auth"]["jwt"][0].update(hs256_secret_env="NOPE"), r"NOPE is not set"),
        (
            lambda d: d["auth"]["jwt"][0].update(jwks_url="https://x/jwks"),
            r"auth\.jwt\[0\] needs exactly one of",
        ),
        (lambda d: d["auth"]["jwt"][0].update(algorithms=["none"]), r"auth\.jwt\[0\]\.algorithms"),
        (lambda d: d["auth"]["jwt"][0].update(algorithms=["RS256"]), r"auth\.jwt\[0\]\.algorithms"),
        (lambda d: d["auth"]["jwt"][0].update(audiance="x"), r"auth\.jwt\[0\] has unknown key"),
        (lambda d: d["auth"]["api_keys"][1].update(sha256="abc"), r"auth\.api_keys\[1\]\.sha256"),
        (lambda d: d["auth"]["api_keys"][2].update(tenant="a'b"), r"auth\.api_keys\[2\]\.tenant"),
        (
            lambda d: d["auth"]["api_keys"].append(dict(d["auth"]["api_keys"][0])),
            r"same sha256 twice",
        ),
        (lambda d: d["webhooks"][0].update(secret_env="NOPE"), r"webhooks\[0\]\.secret_env"),
        (
            lambda d: d["webhooks"][0]["message"].update(correlation_key="$..id"),
            r"webhooks\[0\]\.message\.correlation_key",
        ),
        (lambda d: d.update(limits={"max_body_bytes": 10}), r"limits\.max_body_bytes"),
        (lambda d: d.update(links={"base_url": "x", "secret_env": "S"}), r"links\.base_url"),
        (lambda d: d.update(gatway={}), r"Unknown top-level key"),
        (lambda d: d.update(auth=[1]), r"auth must be a mapping"),
    ],
)
def test_bad_values_name_the_culprit(mutate, culprit):
    document = config_document()
    mutate(document)
    with pytest.raises(GatewayConfigError, match=culprit):
        parse_config(document, env=ENV)


def test_short_and_malformed_secrets_are_refused():
    with pytest.raises(GatewayConfigError, match=r"needs? at least 32"):
        parse_config(config_document(), env={**ENV, "GW_JWT_SECRET": "short"})
    with pytest.raises(GatewayConfigError, match=r"must be 'whsec_'"):
        parse_config(config_document(), env={**ENV, "GW_PAYMENTS_SECRET": "abc"})
    tiny = "whsec_" + base64.b64encode(b"1234").decode()
    with pytest.raises(GatewayConfigError, match=r"at least 16"):
        parse_config(config_document(), env={**ENV, "GW_PAYMENTS_SECRET": tiny})


@pytest.mark.parametrize("example", sorted(EXAMPLE_SECRETS))
def test_documented_example_secrets_are_refused(example):
    env = {**ENV, "GW_JWT_SECRET": example}
    if example.startswith("whsec_"):
        env = {**ENV, "GW_PAYMENTS_SECRET": example}
    with pytest.raises(GatewayConfigError, match="example"):
        parse_config(config_document(), env=env)


def test_the_documented_example_api_key_is_refused():
    document = config_document()
    document["auth"]["api_keys"][0]["sha256"] = hashlib.sha256(EXAMPLE_API_KEY.encode()).hexdigest()
    with pytest.raises(GatewayConfigError, match="example key"):
        parse_config(document, env=ENV)


def test_every_example_secret_in_the_docs_is_refused():
    text = DOCS.read_text()
    assert EXAMPLE_API_KEY in text
    quoted = set(re.findall(r"(?:SECRET|secret)=([A-Za-z0-9_+/=.-]{8,})", text))
    assert quoted, "docs/gateway.md shows example secret values"
    assert quoted <= EXAMPLE_SECRETS, quoted - EXAMPLE_SECRETS


def test_non_loopback_without_auth_refuses_to_start():
    empty = parse_config({}, env={})
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert is_loopback(host)
        check_bind(empty, host)
    for host in ("0.0.0.0", "::", "10.1.2.3", "gateway.example.com"):
        with pytest.raises(GatewayConfigError, match="without authentication"):
            check_bind(empty, host)
    check_bind(parse_config(config_document(), env=ENV), "0.0.0.0")


async def test_serve_refuses_a_public_host_without_auth_before_connecting():
    with pytest.raises(GatewayConfigError, match="without authentication"):
        await serve(parse_config({}, env={}), flows=flows.ALL, host="0.0.0.0", port=1)


def test_unreadable_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(GatewayConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml", env={})
    (tmp_path / "bad.yaml").write_text("auth: [unclosed\n")
    with pytest.raises(GatewayConfigError, match="bad.yaml is not valid YAML"):
        load_config(tmp_path / "bad.yaml", env={})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(GatewayConfigError, match="bad.json is not valid JSON"):
        load_config(tmp_path / "bad.json", env={})


def test_jsonpath_subset():
    document = {"data": {"invoice_id": "INV-7", "items": [{"id": 3}, {"id": 4}]}, "a-b": 1}
    assert JSONPath.parse("$.data.invoice_id").find(document) == "INV-7"
    assert JSONPath.parse("$.data.items[1].id").find(document) == 4
    assert JSONPath.parse("$.a-b").find(document) == 1
    assert JSONPath.parse("$").find(document) is document
    assert JSONPath.parse("$.data.nope").find(document, None) is None
    with pytest.raises(KeyError, match=r"\$\.data\.items\[5\]"):
        JSONPath.parse("$.data.items[5].id").find(document)
    with pytest.raises(KeyError, match=r"\$\.data\.invoice_id\.x"):
        JSONPath.parse("$.data.invoice_id.x").find(document)
    for bad in ("data.id", "$..id", "$.items[*]", "$['a']", "$.a[-1]", "$.", ""):
        with pytest.raises(JSONPathError):
            JSONPath.parse(bad)
