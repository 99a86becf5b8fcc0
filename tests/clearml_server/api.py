"""The ClearML API subset torch-lab's flows call, in memory, with the server's rules (``rules``)."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from typing import Any, Callable

import jwt

from clearml_server.serving import Request
from clearml_server.tasks import TasksMixin, _new_id, _now
from clearml_server.rules import (INVALID_CREDENTIALS, INVALID_TASK_ID, MISSING_FIELDS,
                                        NOT_SUPPORTED, ApiError, check_transition)

API_VERSION = "2.23"  # the newest the SDK (clearml 2.1) has a schema for
ACCESS_KEY, SECRET_KEY = "TESTACCESSKEY", "testsecretkey"


class Api(TasksMixin):
    """The server's state (projects, tasks, models, queues, events) and one method per endpoint."""

    def __init__(self) -> None:
        self.projects: dict[str, dict] = {}
        self.tasks: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.queues: dict[str, dict] = {}
        self.queue_entries: dict[str, list[str]] = {}
        self.events: list[dict] = []
        self.tokens: set[str] = set()

    # --- dispatch ------------------------------------------------------------------------------
    def handle(self, request: Request, headers: dict[str, str], raw: bytes) -> tuple[int, str, bytes]:
        data: Any = None
        try:
            if request.endpoint == "debug.ping":
                data = {"msg": "ClearML server"}
            elif request.endpoint == "auth.login":
                data = self._login(headers)
            else:
                self._check_token(headers)
                method: Callable | None = getattr(self, request.endpoint.replace(".", "_"), None)
                if method is None:
                    raise ApiError(NOT_SUPPORTED, request.endpoint)
                if request.endpoint == "events.add_batch":
                    body = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
                else:
                    body = request.body if isinstance(request.body, dict) else {}
                data = method(body)
            code, subcode, message = 200, 0, "OK"
        except ApiError as error:
            code, subcode, message = error.code, error.subcode, str(error)
        reply = {"meta": {"id": _new_id(), "trx": _new_id(),
                          "endpoint": {"name": request.endpoint, "requested_version": API_VERSION,
                                       "actual_version": API_VERSION},
                          "result_code": code, "result_subcode": subcode, "result_msg": message,
                          "error_stack": None, "error_data": {}},
                 "data": data if code == 200 else {}}
        return code, "application/json", json.dumps(reply).encode()

    def _login(self, headers: dict[str, str]) -> dict:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            key, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            if (key, secret) != (ACCESS_KEY, SECRET_KEY):
                raise ApiError(INVALID_CREDENTIALS)
        elif auth.removeprefix("Bearer ") not in self.tokens:
            raise ApiError(INVALID_CREDENTIALS)
        token = jwt.encode({"api_version": API_VERSION, "server_version": "2.0.0", "env": "test",
                            "exp": int(time.time()) + 86400, "nonce": _new_id()},
                           "stand-in-signing-key-of-32-bytes!!", algorithm="HS256")
        self.tokens.add(token)
        return {"token": token}

    def _check_token(self, headers: dict[str, str]) -> None:
        if headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            raise ApiError((401, 30, "invalid token"))

    # --- helpers -------------------------------------------------------------------------------
    def task(self, body: dict, key: str = "task") -> dict:
        task_id = body.get(key)
        if not task_id:
            raise ApiError(MISSING_FIELDS, key)
        if task_id not in self.tasks:
            raise ApiError(INVALID_TASK_ID, f"id={task_id}")
        return self.tasks[task_id]

    def _status(self, body: dict, new: str, **fields: Any) -> dict:
        task = self.task(body)
        check_transition(task["status"], new, bool(body.get("force")))
        task.update(status=new, status_reason=body.get("status_reason", ""),
                    status_message=body.get("status_message", ""), status_changed=_now(),
                    last_update=_now(), **fields)
        return {"updated": 1, "fields": {"status": new}}

    @staticmethod
    def _matches(item: dict, body: dict) -> bool:
        for key in ("id", "name", "project", "status", "type", "task"):
            wanted = body.get(key)
            if wanted in (None, [], ""):
                continue
            value = item.get(key)
            if isinstance(wanted, list):
                if value not in wanted:
                    return False
            elif key == "name" and isinstance(value, str):
                if not re.search(wanted, value):  # the server matches names as a pattern
                    return False
            elif value != wanted:
                return False
        tags = [t for t in body.get("tags") or [] if not t.startswith("-")]
        return all(t in item.get("tags", []) for t in tags)

    @staticmethod
    def _only(item: dict, body: dict) -> dict:
        fields = body.get("only_fields")
        if not fields:
            return copy.deepcopy(item)
        out: dict = {"id": item["id"]}
        for name in fields:
            head = name.split(".")[0]
            if head in item:
                out[head] = copy.deepcopy(item[head])
        return out

    # --- projects, queues ----------------------------------------------------------------------
    def projects_get_all(self, body: dict) -> dict:
        return {"projects": [self._only(p, body) for p in self.projects.values() if self._matches(p, body)]}

    def projects_create(self, body: dict) -> dict:
        project_id = _new_id()
        self.projects[project_id] = {"id": project_id, "name": body["name"], "created": _now()}
        return {"id": project_id}

    def queues_get_all(self, body: dict) -> dict:
        return {"queues": [self._only(q, body) for q in self.queues.values() if self._matches(q, body)]}

    def queues_get_by_id(self, body: dict) -> dict:
        if body.get("queue") not in self.queues:  # queue_bll.py get_by_id: InvalidQueueId
            raise ApiError((400, 701, "invalid queue id"), f"id={body.get('queue')}")
        return {"queue": copy.deepcopy(self.queues[body["queue"]])}

    def queues_get_default(self, body: dict) -> dict:
        default = next((q for q in self.queues.values() if "default" in q.get("system_tags", [])), None)
        if default is None:
            raise ApiError((400, 703, "no default queue"))  # errors.conf: no_default_queue
        return {"id": default["id"], "name": default["name"]}

    def add_queue(self, name: str) -> str:
        """A queue (made by an admin on a real server), for the tests."""
        queue_id = _new_id()
        self.queues[queue_id] = {"id": queue_id, "name": name, "system_tags": [], "entries": []}
        self.queue_entries[queue_id] = []
        return queue_id
