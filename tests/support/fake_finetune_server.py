"""A loopback server for the OpenAI files and fine-tuning endpoints the SDK calls.

``http://127.0.0.1:PORT/<scenario>/v1`` picks a behaviour:

ok        upload, create, then the job goes validating_files -> running -> succeeded
fail      the job runs, then fails with an error message
invalid   creating the job is refused: 400 invalid_training_file (a validation error)
quota     uploading is refused: 429 insufficient_quota

Every request is kept (method, path, headers, body) so tests can look at what was sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeFineTuning:
    """Use as ``with FakeFineTuning() as fake: fake.url("ok")``."""

    requests: list[Request] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{scenario}/v1"

    def __enter__(self) -> FakeFineTuning:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append(Request(self.command, self.path, dict(self.headers), body))
                match = re.match(r"^/(\w+)/v1(/.*?)(\?.*)?$", self.path)
                if not match:
                    self._answer(404, {"error": {"message": "no such path"}})
                    return
                status, answer = fake.respond(match.group(1), self.command, match.group(2), body)
                self._answer(status, answer)

            do_GET = _handle
            do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def respond(self, scenario: str, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one request."""
        if method == "POST" and path == "/files":
            if scenario == "quota":
                return 429, {
                    "error": {
                        "message": "You exceeded your current quota.",
                        "type": "insufficient_quota",
                        "code": "insufficient_quota",
                    }
                }
            file_id = f"file-{len(self.files) + 1}"
            boundary = body.split(b"\r\n", 1)[0]
            part = next(p for p in body.split(boundary) if b'name="file"' in p)
            payload = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
            self.files[file_id] = payload
            return 200, {
                "id": file_id,
                "object": "file",
                "bytes": len(payload),
                "created_at": int(time.time()),
                "filename": "train.jsonl",
                "purpose": "fine-tune",
                "status": "processed",
            }
        if method == "POST" and path == "/fine_tuning/jobs":
            request = json.loads(body)
            if scenario == "invalid":
                return 400, {
                    "error": {
                        "message": "The training file has 3 examples missing an assistant message.",
                        "type": "invalid_request_error",
                        "param": "training_file",
                        "code": "invalid_training_file",
                    }
                }
            job_id = f"ftjob-{scenario}{len(self.jobs) + 1}"
            self.jobs[job_id] = {
                "id": job_id,
                "object": "fine_tuning.job",
                "created_at": int(time.time()),
                "error": None,
                "fine_tuned_model": None,
                "finished_at": None,
                "hyperparameters": {"n_epochs": "auto"},
                "model": request["model"],
                "organization_id": "org-test",
                "result_files": [],
                "seed": 1,
                "status": "validating_files",
                "trained_tokens": None,
                "training_file": request["training_file"],
                "validation_file": request.get("validation_file"),
                "scenario": scenario,
                "suffix": request.get("suffix"),
            }
            return 200, self._public(self.jobs[job_id])
        match = re.match(r"^/fine_tuning/jobs/([\w-]+)(/events)?$", path)
        if method == "GET" and match and match.group(1) in self.jobs:
            job = self.jobs[match.group(1)]
            if match.group(2):
                events = [
                    {
                        "id": f"ev-{i}",
                        "object": "fine_tuning.job.event",
                        "created_at": i,
                        "level": "info",
                        "message": message,
                        "type": "message",
                    }
                    for i, message in enumerate(job.get("events", []))
                ]
                return 200, {"object": "list", "data": list(reversed(events)), "has_more": False}
            self._advance(job)
            return 200, self._public(job)
        return 404, {"error": {"message": f"no route for {method} {path}"}}

    def _advance(self, job: dict[str, Any]) -> None:
        polls = self.polls[job["id"]] = self.polls.get(job["id"], 0) + 1
        events = job.setdefault("events", ["Validating training file"])
        if polls == 2:
            job["status"] = "running"
            events.append("Step 1/30: training loss=2.10")
        elif polls >= 3 and job["status"] == "running":
            if job["scenario"] == "fail":
                job["status"] = "failed"
                job["error"] = {
                    "code": "server_error",
                    "message": "The job failed due to an internal error.",
                    "param": None,
                }
            else:
                job["status"] = "succeeded"
                job["trained_tokens"] = 12345
                job["fine_tuned_model"] = f"ft:{job['model']}:quillmate:{job['suffix']}:abc123"
                events.append("The job has successfully completed")

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k not in ("scenario", "events", "suffix")}
