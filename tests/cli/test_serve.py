"""`fer-tui serve` without a browser: where it listens, what it warns, what each session runs."""

from __future__ import annotations

import shlex
import sys

import pytest

from fer_tui.cli import main
from fer_tui.commands.serve import is_loopback


class FakeServer:
    """Stands in for textual_serve's Server: records how it was made and that it served."""

    made: list[FakeServer] = []

    def __init__(self, command: str, **kwargs: object) -> None:
        self.command, self.kwargs, self.served = command, kwargs, False
        FakeServer.made.append(self)

    def serve(self) -> None:
        self.served = True


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> type[FakeServer]:
    server = pytest.importorskip("textual_serve.server", reason="textual-serve is not installed")
    FakeServer.made = []
    monkeypatch.setattr(server, "Server", FakeServer)
    return FakeServer


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_localhost_by_default_and_the_same_dashboard_per_session(
    fake_server: type[FakeServer], tmp_path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--data", str(tmp_path / "d"), "--runs-dir", str(tmp_path / "r"), "serve"]) == 0
    (server,) = fake_server.made
    assert server.served
    assert server.kwargs["host"] == "127.0.0.1" and server.kwargs["port"] == 8000
    assert server.kwargs["public_url"] == "http://127.0.0.1:8000"
    assert shlex.split(server.command) == [
        sys.executable, "-m", "fer_tui", "--data", str(tmp_path / "d"),
        "--runs-dir", str(tmp_path / "r"),
    ]  # fmt: skip
    assert "warning" not in capsys.readouterr().err


def test_any_other_address_warns_that_there_is_no_authentication(
    fake_server: type[FakeServer], capsys: pytest.CaptureFixture
) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "9001"]) == 0
    err = capsys.readouterr().err
    assert "warning: listening on 0.0.0.0" in err and "no authentication" in err
    (server,) = fake_server.made
    assert server.kwargs["port"] == 9001


def test_public_url_for_a_forwarded_port_and_a_bad_port(
    fake_server: type[FakeServer], capsys: pytest.CaptureFixture
) -> None:
    assert main(["serve", "--public-url", "http://localhost:9000"]) == 0
    assert fake_server.made[0].kwargs["public_url"] == "http://localhost:9000"
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be 1-65535" in capsys.readouterr().err
