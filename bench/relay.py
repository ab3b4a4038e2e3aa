"""A TCP relay that copies nothing through user space: the throughput reference of bench/proxy.py.

    python bench/relay.py PORT TARGET_HOST:TARGET_PORT

Every connection accepted on 127.0.0.1:PORT is joined to a new connection to the target, a
thread per direction. Bytes move socket -> pipe -> socket with os.splice (Linux), so the relay
does no HTTP and no copying in Python: what it costs is one more loopback hop and its kernel
work. bench/proxy.py downloads the same object directly, through the service and through this
relay; the relay's figure is what any proxy could reach on the machine (elsewhere than Linux it
falls back to recv/send).
"""

import fcntl
import os
import socket
import sys
import threading

BLOCK = 1024 * 1024  # bytes moved per splice call


def pump(source, target):
    try:
        if hasattr(os, "splice"):
            read_end, write_end = os.pipe()
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, BLOCK)  # default 64 KB: 16 times the calls
            try:
                while moved := os.splice(source.fileno(), write_end, BLOCK):
                    while moved:
                        moved -= os.splice(read_end, target.fileno(), moved)
            finally:
                os.close(read_end)
                os.close(write_end)
        else:
            while data := source.recv(BLOCK):
                target.sendall(data)
    except OSError:
        pass  # either side went away: end this direction
    finally:
        try:
            target.shutdown(socket.SHUT_WR)  # pass the end of the stream on
        except OSError:
            pass


def relay(client, upstream):
    forward = threading.Thread(target=pump, args=(client, upstream), daemon=True)
    forward.start()
    pump(upstream, client)
    forward.join()
    client.close()
    upstream.close()


def serve(port, target_host, target_port):
    listener = socket.create_server(("127.0.0.1", port))
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection((target_host, target_port))
        threading.Thread(target=relay, args=(client, upstream), daemon=True).start()


if __name__ == "__main__":
    host, target_port = sys.argv[2].rsplit(":", 1)
    serve(int(sys.argv[1]), host, int(target_port))
