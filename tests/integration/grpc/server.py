# A real gRPC server (grpcio) for the tests: bytes in, bytes out, no generated code.
# Usage: server.py PORT [CERT KEY]  (with CERT and KEY it serves TLS: a grpcs upstream).
import sys
import time
from concurrent import futures

import grpc


def unary(request, context):
    if request == b"slow":
        time.sleep(2)
    if request == b"fail":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    metadata = dict(context.invocation_metadata())
    context.set_trailing_metadata((("x-trailer", "kept"),))
    remaining = context.time_remaining()
    # Without a deadline grpcio reports a remaining time of ages.
    deadline = "set" if remaining is not None and remaining < 3600 else "none"
    consumer = metadata.get("x-consumer-username", "-")
    scheme = metadata.get("x-probe-scheme", "-")
    return b"unary:%s:%s:%s:%s" % (request, consumer.encode(), deadline.encode(), scheme.encode())


def many(request, context):
    for i in range(int(request)):
        yield b"item%d" % i


def gather(requests, context):
    return b"+".join(requests)


def chat(requests, context):
    for message in requests:
        yield b"echo:" + message


handler = grpc.method_handlers_generic_handler(
    "test.Echo",
    {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Many": grpc.unary_stream_rpc_method_handler(many),
        "Gather": grpc.stream_unary_rpc_method_handler(gather),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    },
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handler,))
address = "127.0.0.1:%s" % sys.argv[1]
if len(sys.argv) > 3:
    pair = (open(sys.argv[3], "rb").read(), open(sys.argv[2], "rb").read())
    server.add_secure_port(address, grpc.ssl_server_credentials([pair]))
else:
    server.add_insecure_port(address)
server.start()
server.wait_for_termination()
