"""DNS rebinding: the real server refuses a foreign `Host` on the WebSocket that runs every page.

A web page on a name its owner rebinds to 127.0.0.1 is same-origin with that name, so only the Host header tells
it apart. `.streamlit/config.toml` sets `server.allowedHosts` to the loopback names; Streamlit 1.67 checks it on
the WebSocket handshake (and the agent API, off here), not on plain HTTP. Over HTTP the server hands out only the
static page shell (the same bytes for any Host and query) and its health and metrics counters; nothing of the app
runs, and nothing about this machine is read, until the WebSocket is open.
"""

from __future__ import annotations

import base64
import http.client
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamlit_server import start_server, stop_server, wait_healthy

PROBE = "/Compare?extra=/root,/etc/shadow,/nonexistent"  # the path probe from issue 19


def request(port: int, path: str, host: str | None, websocket: bool = False) -> tuple[int, bytes]:
    """One GET with exactly the Host header given (None: no Host header at all); a WebSocket handshake if asked,
    from a page on that same host, as a browser sends it (so the Origin check alone would let it through)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        if websocket:
            connection.putheader("Connection", "Upgrade")
            connection.putheader("Upgrade", "websocket")
            connection.putheader("Sec-WebSocket-Version", "13")
            connection.putheader("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode())
            if host is not None:
                connection.putheader("Origin", f"http://{host}")
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, b"" if reply.status == 101 else reply.read()
    finally:
        connection.close()


def handshake(port: int, host: str | None) -> int:
    return request(port, "/_stcore/stream", host, websocket=True)[0]


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> Iterator[int]:
    """The dashboard with the shipped config: no host flags."""
    folder = tmp_path_factory.mktemp("hosts")
    process, url = start_server(folder / "data", folder / "streamlit.log")
    try:
        wait_healthy(url, process)
        yield urlsplit(url).port
    finally:
        stop_server(process)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "localhost.evil.example:{port}",  # a loopback name as a prefix
        "127.0.0.1.evil.example:{port}",
        "localhost@evil.example",  # userinfo trick
        "192.168.1.20:{port}",  # a LAN address: only once widened for a talk
        None,  # no Host header
    ],
)
def test_a_foreign_host_cannot_open_the_websocket(port, host):
    status = handshake(port, None if host is None else host.format(port=port))
    assert 400 <= status < 500


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST", "localhost."])
def test_a_loopback_host_opens_the_websocket(port, host):
    assert handshake(port, host.format(port=port)) == 101


def test_over_http_a_foreign_host_gets_only_the_static_shell(port):
    """The path probe behind a foreign Host: the same bytes as the home page behind localhost, no paths read."""
    home_status, home = request(port, "/", f"localhost:{port}")
    probe_status, probe = request(port, PROBE, "evil.example")
    assert home_status == probe_status == 200
    assert probe == home and b"<html" in probe.lower()
    assert b"shadow" not in probe and b"nonexistent" not in probe


def test_a_talk_widens_the_list_with_flags_that_replace_it(tmp_path: Path):
    """README's talk command: the LAN address and localhost given on the command line; the default list is gone."""
    lan = "192.168.1.20"
    flags = ["--server.allowedHosts", lan, "--server.allowedHosts", "localhost"]
    process, url = start_server(tmp_path / "data", tmp_path / "streamlit.log", extra_args=flags)
    try:
        wait_healthy(url, process)
        talk_port = urlsplit(url).port
        assert handshake(talk_port, f"{lan}:{talk_port}") == 101
        assert handshake(talk_port, f"localhost:{talk_port}") == 101
        assert 400 <= handshake(talk_port, f"127.0.0.1:{talk_port}") < 500
        assert 400 <= handshake(talk_port, "evil.example") < 500
    finally:
        stop_server(process)
