"""A tiny Hugging Face Hub stand-in on 127.0.0.1: enough of `resolve/` for the real hf_hub_download, and of
the repo-create / branch / preupload / commit endpoints for the real HfApi.upload_folder."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import yaml

# A few of the Hub's licence ids (https://huggingface.co/docs/hub/repositories-licenses).
HUB_LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0",
                "gpl-2.0", "gpl-3.0", "lgpl-3.0", "openrail", "other", "unknown"}


class FakeHub:
    """Serves repos {repo_id: {revision: {filename: bytes}}}; `mode` injects faults."""

    def __init__(self, port: int):
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.mode = "ok"  # ok | error500 | hang | truncate | tamper
        self.fault_files: set[str] | None = None  # the files `mode` applies to; None: every file
        self.after_get = None  # called with the request path after each GET is served (to move a tag, say)
        self.faults_injected = 0
        self.requests: list[str] = []
        self.private: dict[str, bool] = {}  # repo id -> created private?
        self.tokens: list[str | None] = []  # the Authorization header of each write request
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def do_POST(self):
                hub.requests.append(f"POST {self.path}")
                hub.tokens.append(self.headers.get("Authorization"))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = hub.write_api(self.path.split("?")[0], body)
                self._send(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})

            def _serve(self, body: bool):
                hub.requests.append(f"{self.command} {self.path}")
                mode = hub.mode if hub.fault_files is None or self.path.rsplit("/", 1)[-1] in hub.fault_files else "ok"
                if mode != "ok":
                    hub.faults_injected += 1
                if mode == "hang":
                    time.sleep(5)  # past HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (2 s in conftest)
                if mode == "error500":
                    return self._send(500, b"boom")
                found = hub.lookup(self.path)
                if found is None:
                    return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"})
                commit, data = found
                etag = hashlib.sha256(data).hexdigest()
                if mode == "tamper" and body and not self.path.endswith("config.json"):
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Content-Length": str(len(data))}
                payload = data[: len(data) // 2] if mode == "truncate" and body else data
                self._send(200, payload if body else b"", headers)
                if body and hub.after_get is not None:
                    hub.after_get(self.path)

            def _send(self, status: int, payload: bytes, headers: dict | None = None):
                self.send_response(status)
                headers = headers or {}
                headers.setdefault("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_repo(self, repo_id: str, folder: Path, revision: str = "main") -> str:
        return self._store(repo_id, revision, {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()})

    def _store(self, repo_id: str, revision: str, files: dict[str, bytes]) -> str:
        commit = hashlib.sha1(repo_id.encode() + revision.encode() + b"".join(sorted(files.values()))).hexdigest()
        self.repos.setdefault(repo_id, {})[revision] = files
        self.repos[repo_id][commit] = files
        self._commits = getattr(self, "_commits", {})
        self._commits[(repo_id, revision)] = commit
        self._commits[(repo_id, commit)] = commit
        return commit

    def write_api(self, path: str, body: bytes) -> tuple[int, dict]:
        """POST /api/repos/create, /api/models/ORG/NAME/{branch,preupload,commit}/REV, as the Hub answers them."""
        if path == "/api/validate-yaml":  # upload_folder sends README.md's front matter here first
            meta = yaml.safe_load(json.loads(body)["content"].split("---")[1]) or {}
            if meta.get("license") not in (None, *HUB_LICENSES):
                return 400, {"errors": [{"message": f'"license" must be one of the Hub licence ids, got {meta["license"]!r}'}]}
            return 200, {"warnings": []}
        if path == "/api/repos/create":
            req = json.loads(body)
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            if repo_id in self.repos:
                return 409, {"error": "You already created this model repo", "url": f"/{repo_id}"}
            self.private[repo_id] = bool(req.get("private")) or req.get("visibility") == "private"
            self._store(repo_id, "main", {})
            return 200, {"url": f"/{repo_id}", "name": repo_id}
        parts = path.strip("/").split("/")  # api models ORG NAME ACTION REV
        if len(parts) != 6 or parts[:2] != ["api", "models"]:
            return 404, {"error": f"not served by the fake hub: {path}"}
        repo_id, action, revision = "/".join(parts[2:4]), parts[4], parts[5]
        if repo_id not in self.repos:
            return 404, {"error": "Repository not found"}
        if action == "branch":
            self._store(repo_id, revision, dict(self.repos[repo_id]["main"]))
            return 200, {}
        if revision not in self.repos[repo_id]:
            return 404, {"error": f"Invalid rev id: {revision}"}
        if action == "preupload":  # the real hub sends large files to LFS storage; here every file goes inline
            files = json.loads(body)["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        if action == "commit":
            files = dict(self.repos[repo_id][revision])
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            commit = self._store(repo_id, revision, files)
            return 200, {"commitUrl": f"/{repo_id}/commit/{commit}", "commitOid": commit}
        return 404, {"error": f"not served by the fake hub: {path}"}

    def lookup(self, url: str):
        # /{org}/{name}/resolve/{revision}/{filename}
        parts = url.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        repo_id, revision, filename = "/".join(parts[:2]), unquote(parts[3]), "/".join(parts[4:])  # refs%2Fpr%2F1
        files = self.repos.get(repo_id, {}).get(revision)
        if files is None or filename not in files:
            return None
        return self._commits[(repo_id, revision)], files[filename]

    def asked(self, repo_id: str, filename: str = "config.json") -> list[str]:
        """The revisions `filename` of `repo_id` was requested at (HEAD or GET), in order."""
        found = []
        for request in self.requests:
            parts = request.split(" ", 1)[-1].split("?")[0].strip("/").split("/")
            if len(parts) >= 5 and parts[2] == "resolve" and "/".join(parts[:2]) == repo_id and "/".join(parts[4:]) == filename:
                found.append(unquote(parts[3]))
        return found

    def close(self):
        self.server.shutdown()
        self.server.server_close()
