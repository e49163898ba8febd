"""The token and keys commands, run in-process through gateway.cli.main, plus one
subprocess smoke test of the console entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from gateway.authserver.signing_keys import KeyStore, generate_key
from gateway.cli import main
from gateway.config.loader import load_config
from gateway.config.secrets import parse_secret_hash, verify_secret
from tests.fixtures.authserver import AUDIENCE, SCOPE, write_deployment
from tests.fixtures.demo import start_demo

REPO = Path(__file__).resolve().parents[2]


def test_token_issue_prints_a_verifiable_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_deployment(tmp_path)
    code = main(
        [
            "token",
            "issue",
            "--config",
            str(path),
            "--client",
            "ciz",
            "--scope",
            SCOPE,
            "--audience",
            AUDIENCE,
            "--actor",
            "uzovi:5151",
        ]
    )
    token = capsys.readouterr().out.strip()
    assert code == 0
    keystore = KeyStore.load(load_config(path))
    key = keystore.verification_key(jwt.get_unverified_header(token)["kid"])
    assert key is not None
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=AUDIENCE)
    assert (
        claims["client_id"] == "ciz"
        and claims["scopes"] == [SCOPE]
        and claims["act"] == {"sub": "uzovi:5151"}
    )


def test_token_issue_refuses_a_scope_the_client_may_not_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_deployment(tmp_path)
    code = main(
        [
            "token",
            "issue",
            "--config",
            str(path),
            "--client",
            "ciz",
            "--scope",
            "admin",
            "--audience",
            AUDIENCE,
        ]
    )
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert "invalid_scope: scope not allowed" in captured.err


def test_token_issue_with_a_broken_config_reports_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("routes: []\nbogus: 1\n")
    code = main(
        [
            "token",
            "issue",
            "--config",
            str(path),
            "--client",
            "ciz",
            "--scope",
            SCOPE,
            "--audience",
            AUDIENCE,
        ]
    )
    assert code == 2
    assert f"{path}:2:1: unknown key 'bogus'" in capsys.readouterr().err


def test_keys_generate_writes_a_key_pair_and_jwks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    assert main(["keys", "generate", "--out", str(out), "--alg", "RS256"]) == 0
    pems = list(out.glob("*.pem"))
    jwks = json.loads((out / "jwks.json").read_text())
    assert len(pems) == 1 and [k["kid"] for k in jwks["keys"]] == [pems[0].stem]
    assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]
    assert pems[0].stat().st_mode & 0o077 == 0  # private key readable by the owner only


def test_keys_generate_again_rotates(tmp_path: Path) -> None:
    # Kids carry the creation second: the existing key was made a minute ago, not slept for.
    before = generate_key(tmp_path / "keys", now=time.time() - 60)
    path = write_deployment(tmp_path)
    assert KeyStore.load(load_config(path)).signing_kid == before
    assert main(["keys", "generate", "--out", str(tmp_path / "keys")]) == 0
    store = KeyStore.load(load_config(path))
    assert store.signing_kid != before
    assert {k["kid"] for k in store.jwks()["keys"]} == {before, store.signing_kid}


def test_keys_hash_secret_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("my-secret\n"))
    assert main(["keys", "hash-secret"]) == 0
    stored = capsys.readouterr().out.strip().removeprefix("secret_hash: ")
    salt, digest = parse_secret_hash(stored)
    assert verify_secret("my-secret", salt, digest)


def test_console_entry_point_runs_in_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "keys",
            "generate",
            "--out",
            str(tmp_path / "k"),
            "--alg",
            "ES256",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "k" / "jwks.json").is_file()


def test_demo_serves_tokens_and_stops_on_ctrl_c() -> None:
    import signal
    import urllib.parse
    import urllib.request

    proc, port = start_demo()
    try:
        base = f"http://127.0.0.1:{port}"
        audience = f"{base}/deelnemers/uzovi/5151/graphql"
        body = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "audience": audience,
                "scope": "organisaties/zorgkantoor/notificaties/notificatie:create",
                "client_id": "ciz",
                "client_secret": "ciz-demo-secret",
            }
        ).encode()
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/auth/token", data=body, timeout=5) as resp:
                    token = json.load(resp)["access_token"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("demo did not start")
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == audience
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"curl -s -u ciz:ciz-demo-secret {base}/auth/token" in out
