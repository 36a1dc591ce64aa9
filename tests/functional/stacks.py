"""Extra web servers and spawners for functional tests that need another configuration (JWT auth,
camel case, standby workers).

Each runs the same apps under gunicorn on its own port with configuration overrides in its
environment, sharing Redis, RabbitMQ and the spawner of the stack `make up` started. The JWT
signing key is generated here per test session; no key of any deployment lives in the repository.
"""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.gateway_tokens import ROLE_CLAIM, USER_CLAIM, gateway_token, wso2_claims

ROOT = Path(__file__).resolve().parents[2]
CONF = os.environ.get("ABACO_CONF", str(ROOT / "local-dev.conf"))

__all__ = ["ROLE_CLAIM", "USER_CLAIM", "JwtSigner", "Spawner", "WebServer"]

ROLES = {
    "admin": "Internal/abaco-admin,Internal/everyone",
    "privileged": "Internal/abaco-privileged,Internal/everyone",
    "user": "Internal/abaco-user,Internal/everyone",
    "limited": "Internal/abaco-limited,Internal/everyone",
    "norole": "Internal/everyone",
}


class WebServer:
    """A gunicorn serving ``app`` (default the public apps, actors.app:app) with ``overrides`` (config
    env vars) on ``port``."""

    def __init__(self, port: int, overrides: dict[str, str], app: str = "actors.app:app"):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        if port_in_use(port):
            raise RuntimeError(f"port {port} is taken by another server; choose another with the ABACO_TEST_*_PORT env vars")
        env = dict(os.environ, ABACO_CONF=CONF, **overrides)
        log_dir = ROOT / ".run" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"test-web-{port}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
             "--workers", "1", "--threads", "8", "--timeout", "120",
             "--limit-request-field_size", "65536", app],
            cwd=ROOT, env=env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
        )
        try:
            self.wait_until_up()
        except BaseException:
            self.stop()  # never leave a server behind that the fixture cannot stop
            raise

    def wait_until_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"test web server exited; see {self.log_path}")
            try:
                requests.options(self.base_url + "/", timeout=1)
                return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still booting
                time.sleep(0.1)
        raise RuntimeError(f"test web server on {self.port} did not answer within {timeout}s")

    def stop(self) -> None:
        stop_process(self.process, timeout=20)


class Spawner:
    """``python -m actors.spawner`` on its own command queue, with configuration overrides."""

    def __init__(self, queue: str, overrides: dict[str, str]):
        self.queue = queue
        log_dir = ROOT / ".run" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"test-spawner-{queue}.out"
        env = dict(os.environ, ABACO_CONF=CONF, queue=queue, logs_host_dir=str(log_dir), **overrides)
        self.process = subprocess.Popen([sys.executable, "-m", "actors.spawner"], cwd=ROOT, env=env,
                                        stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        stop_process(self.process, timeout=30)


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (the servers and agents finish their work in flight), SIGKILL after ``timeout``."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class JwtSigner:
    """An RSA key pair made for this test session and JWTs shaped like a WSO2 gateway's."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key_b64 = base64.b64encode(der).decode()

    def token(self, user: str, roles: str | None, tenant_domain: str = "carbon.super", key=None,
              gateway: bool = False, **extra) -> str:
        """A PyJWT token (base64url), or with ``gateway`` one written as a WSO2 gateway writes it
        (standard base64 with padding, ``SHA256withRSA``; tests/gateway_tokens.py)."""
        claims = wso2_claims(user, roles, tenant_domain, **extra)
        if gateway:
            return gateway_token(key or self.key, claims)
        return jwt.encode(claims, key or self.key, algorithm="RS256")

    def headers(self, user: str, role: str, tenant: str = "DEV-DEVELOP", **kwargs) -> dict:
        return {f"X-Jwt-Assertion-{tenant}": self.token(user, ROLES[role], **kwargs)}
