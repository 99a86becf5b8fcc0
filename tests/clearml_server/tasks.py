"""tasks.*, models.* and events.* of the stand-in (mixed into ``Api``)."""

from __future__ import annotations

import copy
import hashlib
import time
import uuid

from clearml_server.rules import (INVALID_MODEL_ID, INVALID_QUEUE_ID, MISSING_FIELDS, ApiError,
                                        check_editable)

# tasks.edit sets these fields (apiserver/schema/services/tasks.conf ``edit``).
EDIT_FIELDS = {"name", "tags", "system_tags", "type", "comment", "parent", "project", "output",
               "execution", "hyperparams", "configuration", "script", "models", "container",
               "runtime"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime())


def _new_id() -> str:
    return uuid.uuid4().hex


def _hash(name: str) -> str:
    """The key of ``last_metrics`` entries: md5 of the metric (variant) name
    (apiserver/database/utils.py ``hash_field_name``)."""
    return hashlib.md5(name.encode()).hexdigest()


class TasksMixin:
    tasks: dict[str, dict]
    models: dict[str, dict]
    queues: dict[str, dict]
    queue_entries: dict[str, list[str]]
    events: list[dict]

    def tasks_create(self, body: dict) -> dict:
        if not body.get("name") or not body.get("type"):
            raise ApiError(MISSING_FIELDS, "name, type")
        task_id = _new_id()
        task = {"tags": [], "system_tags": [], "comment": "", "hyperparams": {}, "configuration": {},
                "execution": {"artifacts": []}, "models": {"input": [], "output": []},
                "script": {}, "runtime": {}, "output": {}, "last_metrics": {}, "last_iteration": 0}
        task.update(copy.deepcopy(body))
        task.update(id=task_id, status="created", created=_now(), last_update=_now(),
                    status_changed=_now(), user="test-user", company="test-company")
        task["execution"].setdefault("artifacts", [])
        self.tasks[task_id] = task
        return {"id": task_id}

    def projects_get_by_id(self, body: dict) -> dict:
        if body.get("project") not in self.projects:
            raise ApiError((400, 401, "invalid project id"), f"id={body.get('project')}")
        return {"project": copy.deepcopy(self.projects[body["project"]])}

    def tasks_get_by_id(self, body: dict) -> dict:
        return {"task": copy.deepcopy(self.task(body))}

    def tasks_get_all(self, body: dict) -> dict:
        found = [t for t in self.tasks.values() if self._matches(t, body)]
        return {"tasks": [self._only(t, body) for t in found]}

    tasks_get_all_ex = tasks_get_all

    def tasks_edit(self, body: dict) -> dict:
        task = self.task(body)
        check_editable(task["status"], bool(body.get("force")))
        for key in set(body) & EDIT_FIELDS:
            task[key] = copy.deepcopy(body[key])
        task["execution"] = task.get("execution") or {}
        task["execution"].setdefault("artifacts", [])
        return {"updated": 1, "fields": {}}

    def tasks_edit_hyper_params(self, body: dict) -> dict:
        task = self.task(body)
        check_editable(task["status"], bool(body.get("force")))  # hyperparams.py: get_task_for_update
        if body.get("replace_hyperparams") == "all":
            task["hyperparams"] = {}
        for param in body.get("hyperparams") or []:
            task["hyperparams"].setdefault(param.get("section") or "General", {})[param["name"]] = param
        return {"updated": 1}

    def tasks_edit_configuration(self, body: dict) -> dict:
        task = self.task(body)
        check_editable(task["status"], bool(body.get("force")))
        if body.get("replace_configuration"):
            task["configuration"] = {}
        for item in body.get("configuration") or []:
            task["configuration"][item["name"]] = item
        return {"updated": 1}

    def tasks_add_or_update_artifacts(self, body: dict) -> dict:
        task = self.task(body)
        check_editable(task["status"], bool(body.get("force")))  # artifacts.py: get_task_for_update
        artifacts = task["execution"].setdefault("artifacts", [])
        for artifact in body.get("artifacts") or []:
            key = (artifact["key"], artifact.get("mode", "output"))
            artifacts[:] = [a for a in artifacts if (a["key"], a.get("mode", "output")) != key]
            artifacts.append(artifact)
        return {"updated": 1}

    def tasks_add_or_update_model(self, body: dict) -> dict:
        task = self.task(body)
        check_editable(task["status"], True)  # tasks.py add_or_update_model: force=True
        kind = body.get("type", "output")
        models = task.setdefault("models", {}).setdefault(kind, [])
        models[:] = [m for m in models if m["name"] != body["name"]]
        models.append({"name": body["name"], "model": body["model"]})
        return {"updated": 1}

    def tasks_set_requirements(self, body: dict) -> dict:
        task = self.task(body)  # services/tasks.py set_requirements: any status, needs a script
        if not task.get("script"):
            raise ApiError((400, 104, "missing task fields"), "Task has no script field")
        task["script"]["requirements"] = body.get("requirements")
        return {"updated": 1}

    def tasks_started(self, body: dict) -> dict:
        result = self._status(body, "in_progress", started=_now())
        return {**result, "started": 1}

    def tasks_stopped(self, body: dict) -> dict:
        return self._status(body, "stopped")

    def tasks_failed(self, body: dict) -> dict:
        return self._status(body, "failed")

    def tasks_completed(self, body: dict) -> dict:
        return self._status(body, "completed")

    def tasks_close(self, body: dict) -> dict:
        return self._status(body, "closed")

    def tasks_reset(self, body: dict) -> dict:
        task = self.task(body)
        if task["status"] == "published" and not body.get("force"):  # task_operations.reset_task
            raise ApiError((400, 110, "invalid task status"), "published")
        task.update(status="created", last_iteration=0, last_metrics={})
        return {"updated": 1}

    def tasks_ping(self, body: dict) -> dict:
        self.task(body)
        return {}

    def tasks_enqueue(self, body: dict) -> dict:
        task = self.task(body)
        queue_id = body.get("queue")
        if body.get("queue_name"):  # enqueue_task: a queue name creates the queue when missing
            queue_id = next((q["id"] for q in self.queues.values() if q["name"] == body["queue_name"]),
                            None) or self.add_queue(body["queue_name"])
        if queue_id not in self.queues:
            raise ApiError(INVALID_QUEUE_ID, f"id={queue_id}")
        result = self._status(body, "queued")
        task.setdefault("execution", {})["queue"] = queue_id
        self.queue_entries[queue_id].append(task["id"])
        return {**result, "queued": 1}

    def tasks_dequeue(self, body: dict) -> dict:
        task = self.task(body)
        for entries in self.queue_entries.values():
            if task["id"] in entries:
                entries.remove(task["id"])
        return self._status(body, "created")

    def tasks_clone(self, body: dict) -> dict:
        source = self.task(body)
        clone = {k: copy.deepcopy(v) for k, v in source.items()
                 if k in ("name", "type", "project", "hyperparams", "configuration", "script",
                          "tags", "container", "execution", "runtime")}
        clone["execution"].pop("queue", None)
        clone["execution"]["artifacts"] = []
        clone.update({k.removeprefix("new_task_"): v for k, v in body.items()
                      if k.startswith("new_task_") and v is not None})
        clone["parent"] = source["id"]
        return self.tasks_create(clone)

    # --- models --------------------------------------------------------------------------------
    def model(self, body: dict, key: str = "model") -> dict:
        if body.get(key) not in self.models:
            raise ApiError(INVALID_MODEL_ID, f"id={body.get(key)}")
        return self.models[body[key]]

    def models_create(self, body: dict) -> dict:
        if not body.get("uri") and not body.get("name"):
            raise ApiError(MISSING_FIELDS, "uri, name")
        model_id = _new_id()
        self.models[model_id] = {"tags": [], "system_tags": [], "ready": False, "uri": "",
                                 **copy.deepcopy(body), "id": model_id, "created": _now()}
        return {"id": model_id, "created": True}

    def models_edit(self, body: dict) -> dict:
        model = self.model(body)
        model.update({k: copy.deepcopy(v) for k, v in body.items() if k not in ("model", "force")})
        return {"updated": 1}

    models_update = models_edit

    def models_update_for_task(self, body: dict) -> dict:
        task = self.task(body)
        model_id = body.get("override_model_id")
        if model_id:
            self.model({"model": model_id}).update(uri=body.get("uri", ""))
            created = False
        else:
            model_id = self.models_create({"name": body.get("name") or task["name"],
                                           "uri": body.get("uri", ""), "task": task["id"],
                                           "project": task.get("project")})["id"]
            created = True
        self.tasks_add_or_update_model({"task": task["id"], "name": body.get("name") or task["name"],
                                        "model": model_id, "type": "output"})
        return {"id": model_id, "created": created, "updated": 1}

    def models_get_by_id(self, body: dict) -> dict:
        return {"model": copy.deepcopy(self.model(body))}

    def models_get_all(self, body: dict) -> dict:
        found = [m for m in self.models.values() if self._matches(m, body)]
        return {"models": [self._only(m, body) for m in found]}

    def models_set_ready(self, body: dict) -> dict:
        self.model(body)["ready"] = True
        return {"updated": 1, "published_task": {}}

    def models_add_or_update_metadata(self, body: dict) -> dict:
        model = self.model(body)
        for item in body.get("metadata") or []:
            model.setdefault("metadata", {})[item["key"]] = item
        return {"updated": 1}

    # --- events --------------------------------------------------------------------------------
    def events_add_batch(self, events: list[dict]) -> dict:
        for event in events:
            task = self.task(event)
            self.events.append(event)
            if event.get("type") == "training_stats_scalar":
                metric, variant = event["metric"], event["variant"]
                entry = task["last_metrics"].setdefault(_hash(metric), {}).setdefault(
                    _hash(variant), {"metric": metric, "variant": variant,
                                     "min_value": event["value"], "max_value": event["value"]})
                entry.update(value=event["value"], min_value=min(entry["min_value"], event["value"]),
                             max_value=max(entry["max_value"], event["value"]))
                task["last_iteration"] = max(task.get("last_iteration") or 0, event.get("iter") or 0)
        return {"added": len(events), "errors": 0}

    def scalars(self, task_id: str) -> dict[tuple[str, str], list[tuple[int, float]]]:
        """The task's scalar events: (metric, variant) -> [(iteration, value)], for assertions."""
        found: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for event in self.events:
            if event.get("task") == task_id and event.get("type") == "training_stats_scalar":
                found.setdefault((event["metric"], event["variant"]), []).append(
                    (event["iter"], event["value"]))
        return found

    def events_scalar_metrics_iter_histogram(self, body: dict) -> dict:
        self.task(body)
        histogram: dict[str, dict[str, dict[str, list]]] = {}
        for (metric, variant), points in self.scalars(body["task"]).items():
            points = sorted(points)
            histogram.setdefault(metric, {})[variant] = {"name": variant, "x": [p[0] for p in points],
                                                         "y": [p[1] for p in points]}
        return histogram
