"""The fileserver side: the SDK's http storage driver POSTs a multipart form to a folder URL (the
field name is the file's path under it), GETs and DELETEs the file's URL
(clearml/storage/helper.py ``_HttpDriver``)."""

from __future__ import annotations

import email.parser
import email.policy

from clearml_server.serving import Request


class Files:
    """Files in memory, by URL path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def handle(self, request: Request, headers: dict[str, str], raw: bytes) -> tuple[int, str, bytes]:
        path = request.path.split("?", 1)[0]
        if request.method == "POST":
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {headers.get('Content-Type', '')}\r\n\r\n".encode() + raw)
            folder = path.rstrip("/")
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                self.files[f"{folder}/{name.lstrip('/')}"] = part.get_payload(decode=True) or b""
            return 200, "application/json", b"{}"
        if request.method == "DELETE":
            found = self.files.pop(path, None)
            return (200 if found is not None else 404), "application/json", b"{}"
        if path in self.files:
            return 200, "application/octet-stream", self.files[path]
        return 404, "text/plain", b"not found"
