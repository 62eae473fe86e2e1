"""A scripted OpenAI-compatible upstream for the openai engine's tests: a thread accepting on
127.0.0.1, one request per connection (Connection: close), answered by a Python function that
writes raw bytes. It records every request (method, target, headers, body) and notices when the
client closed a connection before the answer was complete (aborted)."""

import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time


def make_test_ca(directory):
    """A CA and a leaf for localhost/127.0.0.1 signed by it, made with the openssl CLI in
    `directory`. Returns (ca_file, cert_file, key_file)."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ringcast test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
    with open(os.path.join(directory, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=critical,CA:FALSE\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")
    return tuple(os.path.join(directory, n) for n in ("ca.pem", "leaf.pem", "leaf.key"))


class Request:
    def __init__(self, method, target, headers, body):
        self.method, self.target, self.headers, self.body = method, target, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class Exchange:
    """What a script writes with: raw bytes, SSE helpers, and whether the client went away."""

    def __init__(self, sock):
        self.sock = sock

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def head(self, status=200, content_type="text/event-stream", extra=None, length=None):
        lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
        self.send("\r\n".join(lines) + "\r\n\r\n")

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def end(self):
        self.send(b"0\r\n\r\n")

    def json_answer(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.head(status, "application/json", extra, len(body))
        self.send(body)

    def sse(self, obj, event=None):
        text = (f"event: {event}\n" if event else "") + "data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n"
        self.chunk(text)

    def client_gone(self, timeout):
        """True once the client closes its side (within `timeout` seconds)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


class FakeUpstream:
    """`script(request, exchange, index)` answers every request but the model list (GET
    .../models, which ringcast asks once per shard at start-up: answered with `models`, counted
    in model_requests, not in requests)."""

    def __init__(self, script, models=("up-model",), models_failures=0, tls=None):
        """`tls`: (cert_file, key_file) to serve HTTPS."""
        self.script = script
        self.tls = None
        if tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
        self.models = list(models)
        self.models_failures = models_failures  # the first model lists answered 503
        self.model_requests = 0
        self.requests = []
        self.aborted = []  # indexes of requests whose client left before the script finished
        self.errors = []
        self._lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def url(self, path="/v1", host="127.0.0.1"):
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        if self.tls:
            try:
                conn.settimeout(10)
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with self._lock:
                    self.errors.append("tls: " + repr(e))
                conn.close()
                return
        with conn:
            buf = b""
            conn.settimeout(10)
            try:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                req = Request(method, target, headers, rest[:length].decode())
                if method == "GET" and target.endswith("/models"):
                    with self._lock:
                        self.model_requests += 1
                        failing = self.model_requests <= self.models_failures
                    if failing:
                        Exchange(conn).json_answer(503, {"error": {"message": "starting", "type": "server_error",
                                                                   "param": None, "code": None}})
                        return
                    Exchange(conn).json_answer(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]})
                    return
                with self._lock:
                    index = len(self.requests)
                    self.requests.append(req)
                try:
                    self.script(req, Exchange(conn), index)
                except (BrokenPipeError, ConnectionResetError):
                    with self._lock:
                        self.aborted.append(index)
            except Exception as e:  # noqa: BLE001 - recorded for the test to see
                with self._lock:
                    self.errors.append(repr(e))

    def wait_requests(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= n:
                    return True
            time.sleep(0.01)
        return False

    def close(self):
        self._stop = True
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def chat_chunk(content=None, finish=None, model="up-model", index=0, tool_calls=None):
    delta = {}
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def usage_chunk(prompt=3, completion=2, model="up-model"):
    return {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                     "total_tokens": prompt + completion}}
