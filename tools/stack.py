"""Runs the four services as separate processes (for `make run` and the end-to-end tests).

python -m tools.stack run      migrate, start all four, seed the demo merchant and store, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVICES = {"sync": 8001, "orders": 8002, "checkout": 8003, "tracking": 8004}
ROOT = Path(__file__).resolve().parent.parent


# Below Linux's ephemeral range (32768-60999): a port the OS hands out there could be taken, between two restarts
# of the process listening on it, by the source port of an outgoing connection. Skips infra.sh's default ports.
PORT_RANGE = range(20_000, 32_000)
INFRA_PORTS = {25432, 29092, 29093}


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, for a stack that must not collide with another one on this machine."""
    pick = random.SystemRandom()
    chosen: list[int] = []
    while len(chosen) < count:
        port = pick.choice(PORT_RANGE)
        if port in chosen or port in INFRA_PORTS:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


class Stack:
    def __init__(self, env: dict[str, str], ports: dict[str, int] | None = None, log_dir: Path | None = None):
        self.env = {**os.environ, **env}
        self.ports = ports or dict(SERVICES)
        self.log_dir = log_dir or ROOT / ".local" / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def migrate(self) -> None:
        running = {
            name: subprocess.Popen([sys.executable, "-m", f"services.{name}", "migrate"], env=self.env, cwd=ROOT)
            for name in self.ports
        }
        failed = [name for name, p in running.items() if p.wait() != 0]
        if failed:
            raise RuntimeError(f"migrations failed for {', '.join(failed)}")

    def start(self, name: str) -> None:
        self.start_process(name, [sys.executable, "-m", f"services.{name}", "serve"], PORT=str(self.ports[name]))

    def start_process(self, name: str, argv: list[str], **env: str) -> None:
        """A process of the stack, its output in log_dir/<name>.log."""
        log = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            argv, env={**self.env, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def start_all(self, timeout: float = 60) -> None:
        for name in self.ports:
            self.start(name)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(self.ports)
        while waiting:
            for name in list(waiting):
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir / name}.log")
                try:
                    if httpx.get(f"{self.url(name)}/readyz", timeout=1).status_code == 200:
                        waiting.discard(name)
                except httpx.HTTPError:
                    pass
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {', '.join(sorted(waiting))}")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


DEMO_ENV = {
    # The demo's outside world (python -m tools.emulators): Shopify store, Stripe, SMTP.
    "SYNC_PUBLIC_URL": f"http://127.0.0.1:{SERVICES['sync']}",
    "STRIPE_API_BASE": "http://127.0.0.1:8102",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "8125",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.stack")
    parser.add_argument("command", choices=["run"])
    parser.parse_args()
    from tools import demo

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stack = Stack(DEMO_ENV)
    stack.migrate()
    try:
        stack.start_process("emulators", [sys.executable, "-m", "tools.emulators"])
        stack.start_all()
        demo.seed(stack)
        print(demo.instructions(stack), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
