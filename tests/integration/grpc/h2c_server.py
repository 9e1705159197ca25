# A plain HTTP/2 server with prior knowledge (h2c), answering every request with 200 and
# "h2 PATH". It speaks no HTTP/1.1: an upstream that only a gateway speaking h2 can reach.
# Usage: h2c_server.py PORT
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def handle(sock):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    paths = {}
    while True:
        data = sock.recv(65535)
        if not data:
            return
        try:
            events = conn.receive_data(data)
        except Exception:
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                paths[event.stream_id] = dict(event.headers).get(b":path", b"?")
            elif isinstance(event, h2.events.StreamEnded):
                body = b"h2 " + paths.pop(event.stream_id, b"?")
                conn.send_headers(event.stream_id, [(":status", "200"), ("content-length", str(len(body)))])
                conn.send_data(event.stream_id, body, end_stream=True)
        sock.sendall(conn.data_to_send())


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
while True:
    client, _ = server.accept()
    threading.Thread(target=handle, args=(client,), daemon=True).start()
