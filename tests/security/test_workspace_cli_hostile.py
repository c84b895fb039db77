"""``python -m workspace`` under hostile configuration (issue 17, Workspace findings).

- ``migrate`` never prints a database password (success or failure).
- ``serve`` refuses to run without tokens on an address other machines can reach, and refuses
  short or repeated tokens, each with one line naming the variable and the fix and never the
  token itself; nothing is opened or created when it refuses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.workspace.ws_helpers import (
    PG_SERVER,
    REPO_ROOT,
    create_pg_database,
    drop_pg_database,
    free_port,
)
from workspace.__main__ import check_auth, display_url, is_loopback, main
from workspace.http.guard import parse_tokens
from workspace.http.service import create_app

PASSWORD = "S3cret-Pa55-w0rd"
GOOD_TOKEN = "good-token-0123456789abcdef"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workspace", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- 4. migrate masks the password ------------------------------------------------------------


@pytest.mark.postgres
async def test_migrate_never_prints_the_database_password() -> None:
    url = await create_pg_database()
    user_host = PG_SERVER.split("@", 1)
    user, host = (user_host[0], user_host[1]) if len(user_host) == 2 else ("postgres", PG_SERVER)
    name = url.rsplit("/", 1)[1]
    # The test server trusts local connections, so the password is accepted and ignored.
    with_password = f"postgresql://{user}:{PASSWORD}@{host}/{name}"
    try:
        done = run_cli("migrate", "--database-url", with_password)
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        assert f"{user}:***@" in done.stdout
    finally:
        await drop_pg_database(url)


def test_migrate_failure_is_one_line_without_the_password() -> None:
    port = free_port()  # nothing listens there
    done = run_cli("migrate", "--database-url", f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/db")
    assert done.returncode == 1
    assert PASSWORD not in done.stdout + done.stderr
    assert done.stderr.startswith("error: cannot migrate the workspace schema at ")
    assert "u:***@" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://me:{PASSWORD}@db:5432/ws", "postgresql://me:***@db:5432/ws"),
        (f"postgresql+asyncpg://me:{PASSWORD}@db/ws", "postgresql+asyncpg://me:***@db/ws"),
        ("postgresql://me@db/ws", "postgresql://me@db/ws"),
        ("/var/lib/ws/workspace.db", "/var/lib/ws/workspace.db"),
        (f"weird://me:{PASSWORD}@[::1", "weird://***"),
    ],
)
def test_display_url_masks_passwords(url: str, shown: str) -> None:
    assert display_url(url) == shown
    assert PASSWORD not in display_url(url)


# -- 5. tokens --------------------------------------------------------------------------------

PUBLIC_HOSTS = ["0.0.0.0", "::", "192.168.1.10", "10.0.0.5", "workspace.example.com", "[::]"]


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_serve_refuses_no_tokens_on_a_public_address(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never-created.db"
    code = main(
        ["serve", "--host", host, "--port", str(free_port()), "--database-url", str(db)],
        env={"WORKSPACE_TOKENS": ""},
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: refusing to serve without auth")
    for needed in ("WORKSPACE_TOKENS", "--host", "127.0.0.1", "16 characters"):
        assert needed in err
    assert not db.exists()


def test_serve_refuses_a_public_address_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never-created.db"
    code = main(["serve", "--database-url", str(db)], env={"WORKSPACE_HOST": "0.0.0.0"})
    assert code == 2
    assert "WORKSPACE_HOST" in capsys.readouterr().err
    assert not db.exists()


def test_serve_refusal_from_a_real_process(tmp_path: Path) -> None:
    db = tmp_path / "never-created.db"
    started = time.monotonic()
    done = run_cli(
        "serve", "--host", "0.0.0.0", "--port", str(free_port()), "--database-url", str(db),
        env={"WORKSPACE_TOKENS": ""},
    )  # fmt: skip
    assert done.returncode == 2
    assert "WORKSPACE_TOKENS" in done.stderr
    assert time.monotonic() - started < 60
    assert not db.exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"])
def test_loopback_without_tokens_is_allowed(host: str) -> None:
    assert is_loopback(host)
    check_auth(host, {})


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_public_address_with_tokens_is_allowed(host: str) -> None:
    assert not is_loopback(host)
    check_auth(host, {GOOD_TOKEN: "a"})


def test_loopback_without_tokens_serves_and_warns(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "workspace", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--database-url", str(tmp_path / "dev.db"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "WORKSPACE_TOKENS": ""},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "serve exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not become healthy"
            time.sleep(0.1)
        search = httpx.post(f"http://127.0.0.1:{port}/v1/search", json={}, timeout=10)
        assert search.status_code == 200  # no auth on loopback (development)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log.seek(0)
    assert "WORKSPACE_TOKENS is empty" in log.read()


BAD_TOKEN_SPECS = [
    (f"{GOOD_TOKEN}:alpha,{GOOD_TOKEN}:beta", "repeats"),
    (f"{GOOD_TOKEN}:alpha, {GOOD_TOKEN}:alpha", "repeats"),
    ("short-token:alpha", "16"),
    (f"{GOOD_TOKEN}:alpha,tiny:beta", "16"),
    ("x:alpha", "16"),
]


@pytest.mark.parametrize(("spec", "word"), BAD_TOKEN_SPECS)
def test_short_or_repeated_tokens_are_refused(
    spec: str, word: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=word):
        parse_tokens(spec)
    with pytest.raises(ValueError):
        create_app(tokens=spec)
    db = tmp_path / "never-created.db"
    code = main(
        ["serve", "--port", str(free_port()), "--database-url", str(db)],
        env={"WORKSPACE_TOKENS": spec},
    )
    err = capsys.readouterr().err
    assert code == 2 and word in err and "WORKSPACE_TOKENS" in err
    for token in (GOOD_TOKEN, "short-token", "tiny"):
        assert token not in err  # the message names entries and tenants, never a token
    assert not db.exists()


@pytest.mark.parametrize(
    "tokens", [{"short": "alpha"}, {" " + GOOD_TOKEN: "alpha"}, {GOOD_TOKEN: ""}]
)
def test_token_mappings_are_checked_too(tokens: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        create_app(tokens=tokens)
