"""A tiny Hugging Face Hub stand-in on 127.0.0.1: enough of `resolve/` for the real hf_hub_download."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FakeHub:
    """Serves repos {repo_id: {revision: {filename: bytes}}}; `mode` injects faults."""

    def __init__(self, port: int):
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.mode = "ok"  # ok | error500 | hang | truncate | tamper
        self.fault_files: set[str] | None = None  # the files `mode` applies to; None: every file
        self.after_get = None  # called with the request path after each GET is served (to move a tag, say)
        self.faults_injected = 0
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

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
                headers = headers or {"Content-Length": str(len(payload))}
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
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
        commit = hashlib.sha1(repo_id.encode() + revision.encode() + b"".join(sorted(files.values()))).hexdigest()
        self.repos.setdefault(repo_id, {})[revision] = files
        self.repos[repo_id][commit] = files
        self._commits = getattr(self, "_commits", {})
        self._commits[(repo_id, revision)] = commit
        self._commits[(repo_id, commit)] = commit
        return commit

    def lookup(self, url: str):
        # /{org}/{name}/resolve/{revision}/{filename}
        parts = url.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        files = self.repos.get(repo_id, {}).get(revision)
        if files is None or filename not in files:
            return None
        return self._commits[(repo_id, revision)], files[filename]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
