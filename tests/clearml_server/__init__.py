"""A stand-in for a ClearML server (API server and fileserver), for tests of torch-lab online.

Two ``http.server`` threads on 127.0.0.1, ports the OS picks, state in memory, every request logged
(``ClearMLServer.api.log`` / ``.files.log``), faults switched on at will (``fault``:
401, 503, a stall, the server going away; ``fault_when`` to set one mid-run).

What it proves: the real clearml SDK, driven by the real torch-lab commands, makes the calls that
torch-lab's flows need against the subset of the API implemented here (``api`` and ``tasks``), with
the server's rules that decide outcomes: the task status state machine with ``force``, which
statuses may be edited, the error codes (HTTP code and subcode) the SDK branches on, token login,
``last_metrics`` keyed by md5 of the metric and variant, and the fileserver's upload form. Those
rules are copied from clearml-server's code (cited in ``rules``) and are never looser; an endpoint
it lacks is an error, not an empty success.

What it cannot prove: anything of the real server beyond that subset: its web UI, MongoDB and
Elasticsearch storage, permissions and multi-user behaviour, the full request validation of its
schemas (unknown fields are ignored), real agents on other machines, and performance. With an
``ssl.SSLContext`` it serves HTTPS (a self-signed certificate the tests make).
"""

from __future__ import annotations

import ssl

from clearml_server.api import ACCESS_KEY, SECRET_KEY, Api
from clearml_server.files import Files
from clearml_server.serving import Server


class ClearMLServer:
    """The API server (``api``: state, ``api_http``: log and faults) and the fileserver."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.api = Api()
        self.files = Files()
        self.api_http = Server(self.api.handle, tls)
        self.files_http = Server(self.files.handle, tls)

    def env(self) -> dict[str, str]:
        """The environment that points the ClearML SDK at this server."""
        return {"CLEARML_API_HOST": self.api_http.url, "CLEARML_WEB_HOST": self.api_http.url,
                "CLEARML_FILES_HOST": self.files_http.url, "CLEARML_API_ACCESS_KEY": ACCESS_KEY,
                "CLEARML_API_SECRET_KEY": SECRET_KEY}

    def stop(self) -> None:
        self.api_http.stop()
        self.files_http.stop()
