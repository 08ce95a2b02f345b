#!/usr/bin/env python3
"""A minimal key-value service for the generic codecs' integration tests.

Requests: "SET key value", "GET key", "INCR key", "DEL key", "SAVE"; one reply each.
With --dir, SAVE writes the data to DIR/state.json (sorted, so equal data gives equal bytes; written to a
temporary file and renamed), and the file is loaded at start when it exists.
--framing line: newline-terminated text; --framing length: 4-byte big-endian length + payload.
"""
import argparse
import json
import os
import socket
import struct
import threading

data = {}
lock = threading.Lock()
state_dir = None


def execute(request: str) -> str:
    parts = request.split(" ", 2)
    cmd = parts[0].upper()
    with lock:
        if cmd == "SET" and len(parts) == 3:
            data[parts[1]] = parts[2]
            return "OK"
        if cmd == "GET" and len(parts) == 2:
            return data.get(parts[1], "(nil)")
        if cmd == "INCR" and len(parts) == 2:
            value = int(data.get(parts[1], "0")) + 1
            data[parts[1]] = str(value)
            return str(value)
        if cmd == "DEL" and len(parts) == 2:
            return "1" if data.pop(parts[1], None) is not None else "0"
        if cmd == "SAVE" and len(parts) == 1 and state_dir is not None:
            path = os.path.join(state_dir, "state.json")
            with open(path + ".tmp", "w") as f:
                json.dump(data, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(path + ".tmp", path)
            return "OK"
    return "ERR unknown request"


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve(conn, framing):
    with conn:
        if framing == "line":
            reader = conn.makefile("rb")
            for line in reader:
                reply = execute(line.decode().rstrip("\r\n"))
                conn.sendall(reply.encode() + b"\n")
        else:
            while True:
                header = read_exact(conn, 4)
                if header is None:
                    return
                payload = read_exact(conn, struct.unpack(">I", header)[0])
                if payload is None:
                    return
                reply = execute(payload.decode()).encode()
                conn.sendall(struct.pack(">I", len(reply)) + reply)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--framing", choices=["line", "length"], default="line")
    parser.add_argument("--dir")
    args = parser.parse_args()
    global state_dir
    state_dir = args.dir
    if state_dir is not None and os.path.exists(os.path.join(state_dir, "state.json")):
        with open(os.path.join(state_dir, "state.json")) as f:
            data.update(json.load(f))
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(64)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, args.framing), daemon=True).start()


if __name__ == "__main__":
    main()
