"""The tests' server harness: a port taken between the probe and BentoML's bind is retried."""

import socket
import urllib.request

import live_server
import pytest

pytestmark = pytest.mark.slow


def test_a_taken_port_is_retried_on_a_fresh_one(tiny_calibrated, tmp_path, monkeypatch):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real = live_server.free_port
        monkeypatch.setattr(live_server, "free_port", lambda: next(ports, None) or real())
        with live_server.Server(tiny_calibrated, tmp_path / "serve.log") as server:
            assert server.port != taken
            with urllib.request.urlopen(server.url + "/readyz", timeout=5) as r:
                assert r.status == 200
