"""A service with missing or bad settings stops at start, naming the variable."""

import os
import subprocess
import sys


def start_embedding(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MATCHA_")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "matcha.embedding"], env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_database_url_is_named():
    result = start_embedding({})
    assert result.returncode != 0
    assert "MATCHA_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_bad_values_are_named(tmp_path):
    result = start_embedding(
        {"MATCHA_DATABASE_URL": "postgresql:///x", "MATCHA_CLEARANCE": "SECRET", "MATCHA_EMBEDDING_BACKEND": "tei"}
    )
    assert result.returncode != 0
    assert "MATCHA_CLEARANCE" in result.stderr


def test_cross_field_rules_are_explained():
    result = start_embedding({"MATCHA_DATABASE_URL": "postgresql:///x", "MATCHA_EMBEDDING_BACKEND": "tei"})
    assert result.returncode != 0
    assert "MATCHA_EMBEDDING_TEI_URL is required when MATCHA_EMBEDDING_BACKEND=tei" in result.stderr


def test_missing_verification_key_is_explained(tmp_path):
    result = start_embedding({"MATCHA_DATABASE_URL": "postgresql:///x", "MATCHA_STATE_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "token verification key" in result.stderr and "MATCHA_AUTH_PUBLIC_KEY_FILE" in result.stderr
