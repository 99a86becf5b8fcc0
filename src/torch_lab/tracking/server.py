"""Talking to the ClearML server before a task exists: the start-up check that it answers, as a
ClearML API server, over a connection the SDK itself would accept, and takes the keys."""

from __future__ import annotations

import json
import re

from torch_lab.errors import UserError

PING_TIMEOUT_S = 5.0


def check_server(timeout: float = PING_TIMEOUT_S) -> None:
    """Raise a UserError within ``timeout`` seconds when the configured API server does not answer.

    The ping goes through the SDK's own HTTP session (without retries), so it trusts what the SDK
    trusts: ``api.verify_certificate`` / ``CLEARML_API_HOST_VERIFY_CERT`` (true, false or a CA
    bundle) and requests' ``REQUESTS_CA_BUNDLE`` and proxies."""
    import requests
    from clearml.backend_api import Session
    from clearml.backend_api.utils import get_http_session_with_retry

    host = Session.get_api_server_host()
    not_clearml = (f"ClearML server {host} answered, but not as a ClearML API server ({{}}); check "
                   "api_server in clearml.conf or CLEARML_API_HOST")
    session = get_http_session_with_retry(total=0, connect=0, read=0, redirect=0, status=0)
    try:
        with session.get(f"{host.rstrip('/')}/debug.ping", timeout=timeout, stream=True) as reply:
            status, body = reply.status_code, reply.raw.read(65536, decode_content=True)
    except requests.exceptions.SSLError as error:
        raise UserError(
            f"ClearML server {host}: its TLS certificate is not trusted ({_root_cause(error)}); "
            "give its CA bundle in api.verify_certificate (clearml.conf), "
            "CLEARML_API_HOST_VERIFY_CERT or REQUESTS_CA_BUNDLE, or run with --offline") from None
    except (requests.exceptions.RequestException, OSError, ValueError) as error:
        raise UserError(
            f"ClearML server {host} is unreachable ({_root_cause(error)}); check clearml.conf or "
            "the CLEARML_API_* variables, or run with --offline"
        ) from None
    finally:
        session.close()
    if status == 404:
        raise UserError(not_clearml.format("HTTP 404 for /debug.ping"))
    if status == 200:
        try:
            reply_json = json.loads(body)
        except ValueError:
            reply_json = None
        if not isinstance(reply_json, dict) or "meta" not in reply_json:
            raise UserError(not_clearml.format("its /debug.ping reply is not ClearML's"))
    if status in (200, 401, 403):
        log_in(host)
    # Any other answer (e.g. 503 in maintenance): the SDK's own calls report what follows.


def log_in(host: str) -> None:
    """Log in with the SDK's default session (the one ``Task.init`` and ``Task.get_task`` then
    use): refused keys are a UserError naming the server and the settings that hold them."""
    from clearml import Task

    try:
        Task._get_default_session()
    except Exception as error:
        if type(error).__name__ != "LoginError":
            raise
        text = str(error).strip().splitlines()[0] if str(error).strip() else "refused"
        refused = re.match(r"Failed getting token \(error (\d+) from [^)]*\): (.*)", text)
        reason = f"HTTP {refused[1]}: {refused[2]}" if refused else text
        raise UserError(f"ClearML server {host}: login refused ({reason}); check api.credentials in "
                        "clearml.conf or CLEARML_API_ACCESS_KEY / CLEARML_API_SECRET_KEY (the keys of "
                        "that server), or run with --offline") from None


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error under requests' and urllib3's wrappers (``[Errno 111] Connection
    refused``, ``certificate verify failed: ...``): the one a user can act on."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        reason = getattr(error, "reason", None)
        inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        deeper = next((e for e in (reason, error.__cause__, inner, error.__context__)
                       if isinstance(e, BaseException)), None)
        if deeper is None:
            break
        error = deeper
    return error


def check_queue(queue: str) -> None:
    """A UserError unless the logged-in server has ClearML queue ``queue``: checked before the
    task exists, so a misspelt name leaves no task behind."""
    from clearml import Task
    from clearml.backend_interface.util import get_queue_id

    session = Task._get_default_session()
    if not get_queue_id(session, queue):
        raise UserError(f"--queue {queue}: no such ClearML queue on {session.host}; "
                        "create it (ClearML UI, Orchestration > Queues) or name another")
