"""pmproxy's REST API spoken as Grafana speaks it, with the standard library alone.

Kept free of the project's imports so that the version matrix can run it with another
release's Python inside that release's namespace (tests/matrix): ``python3 http11.py PORT``
reads one JSON request per line (``[path, {params}]``) and writes one JSON reply per line.

HTTP/1.1, as Grafana does: pmproxy streams any reply larger than its chunk size (a page) with
chunked encoding, and refuses such replies to HTTP/1.0 clients with 413 "HTTP 1.0 request
result exceeds server limits".  The connection stays keep-alive (with "Connection: close",
pmproxy 6.0.3 closed it after the first chunk of a streamed reply); the reply ends at its
zero-size chunk or Content-Length.  Read over a plain socket and de-chunked leniently:
Python's http.client rejected some chunked replies of pmproxy 6.0.3 (blank chunk size lines).
"""
import json
import socket
import sys
import urllib.parse


def _dechunk(body: bytes) -> tuple[bytes, bool]:
    """Chunked transfer decoding, lenient about blank size lines (pmproxy 6.0.3 writes
    some); returns the data so far and whether the terminating zero-size chunk came."""
    out, rest = b"", body
    while rest:
        size_line, crlf, rest = rest.partition(b"\r\n")
        if not crlf:
            return out, False
        if not size_line.strip():
            continue
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out, True
        if len(rest) < size + 2:
            return out, False
        out, rest = out + rest[:size], rest[size + 2:]
    return out, False


def _complete(raw: bytes) -> tuple[bytes, bool]:
    """(body, whole reply received?) of one HTTP/1.1 reply, chunked or with Content-Length."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return b"", False
    fields = {k.strip().lower(): v.strip() for k, _, v in
              (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        return _dechunk(body)
    length = int(fields.get(b"content-length", b"-1"))
    return body, length >= 0 and len(body) >= length


def get(port: int, path: str, params: dict) -> tuple[bytes, bytes]:
    """(raw reply, body) of one GET to pmproxy on 127.0.0.1:port."""
    request = (f"GET {path}?{urllib.parse.urlencode(params)} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{port}\r\n\r\n")
    raw, body, whole = b"", b"", False
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request.encode())
        while not whole and (chunk := conn.recv(65536)):
            raw += chunk
            body, whole = _complete(raw)
    return raw, body


def serve(port: int) -> None:
    for line in sys.stdin:
        path, params = json.loads(line)
        raw, body = get(port, path, params)
        try:
            reply = {"json": json.loads(body.decode())}
        except ValueError:
            reply = {"error": raw[:300].decode(errors="replace")}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
