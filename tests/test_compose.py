"""docker-compose.yml: validated by `docker compose config` when the compose plugin is available, and
checked as text (no YAML parser needed) for the four services, their migrate one-shots and their ports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SERVICES = {"sync": 8001, "orders": 8002, "checkout": 8003, "tracking": 8004}


def _compose_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _service_blocks(text: str) -> dict[str, str]:
    """The text of each entry under the top-level `services:` key, keyed by service name, with quotes,
    brackets and commas removed and whitespace collapsed (so list and string commands read the same)."""
    blocks: dict[str, list[str]] = {}
    in_services = False
    current: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):  # a top-level key
            in_services = line.rstrip() == "services:"
            current = None
            continue
        if not in_services:
            continue
        header = re.fullmatch(r"  ([A-Za-z0-9_.-]+):\s*", line)
        if header:
            current = header.group(1)
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return {name: _normalize(" ".join(lines)) for name, lines in blocks.items()}


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[\"'\[\],]", " ", text).split())


def test_compose_file_is_valid() -> None:
    if not _compose_available():
        pytest.skip("`docker compose version` failed: no docker client or no compose plugin")
    result = subprocess.run(
        [shutil.which("docker") or "docker", "compose", "-f", "docker-compose.yml", "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_migrate_one_shot_and_its_port() -> None:
    blocks = _service_blocks(COMPOSE_FILE.read_text())
    assert {"postgres", "kafka"} <= blocks.keys()
    for name, port in SERVICES.items():
        assert f"{name}-migrate" in blocks, f"no {name}-migrate service"
        migrate = blocks[f"{name}-migrate"]
        assert f"command: python -m services.{name} migrate" in migrate
        assert "ports:" not in migrate, f"{name}-migrate is a one-shot, it publishes nothing"

        assert name in blocks, f"no {name} service"
        serve = blocks[name]
        assert f"command: python -m services.{name} serve" in serve
        assert f"- {port}:{port}" in serve, f"{name} does not publish port {port}"
        assert f"PORT: {port}" in serve
        assert f"{name}-migrate: condition: service_completed_successfully" in serve
        assert "kafka: condition: service_healthy" in serve
        assert f"http://127.0.0.1:{port}/healthz" in serve
        assert "restart: unless-stopped" in serve
