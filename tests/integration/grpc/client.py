# A real gRPC client (grpcio) for the tests: makes every kind of call through the gateway and
# prints what came back as JSON.
# Usage: client.py TARGET PREFIX [CA NAME]  (with CA and NAME: TLS, trusting CA, for server NAME).
import json
import sys

import grpc

target, prefix = sys.argv[1], sys.argv[2]
if len(sys.argv) > 4:
    credentials = grpc.ssl_channel_credentials(root_certificates=open(sys.argv[3], "rb").read())
    options = [("grpc.ssl_target_name_override", sys.argv[4])]
    channel = grpc.secure_channel(target, credentials, options=options)
else:
    channel = grpc.insecure_channel(target)

key = (("apikey", "secret"),)
out = {}


def call(name, fn):
    try:
        out[name] = fn()
    except grpc.RpcError as e:
        out[name] = {"code": e.code().name, "message": e.details()}


def unary(request, metadata=key, timeout=10):
    response, c = channel.unary_unary(prefix + "Unary").with_call(request, metadata=metadata, timeout=timeout)
    return {"response": response.decode(), "trailers": dict(c.trailing_metadata())}


call("unary", lambda: unary(b"hi"))
call("no_deadline", lambda: unary(b"hi", timeout=None)["response"])
call("many", lambda: [m.decode() for m in channel.unary_stream(prefix + "Many")(b"3", metadata=key, timeout=10)])
call("gather", lambda: channel.stream_unary(prefix + "Gather")(iter([b"a", b"b", b"c"]), metadata=key, timeout=10).decode())
call("chat", lambda: [m.decode() for m in channel.stream_stream(prefix + "Chat")(iter([b"x", b"y"]), metadata=key, timeout=10)])
call("deadline", lambda: unary(b"slow", timeout=0.5))
call("aborted", lambda: unary(b"fail"))
call("no_key", lambda: unary(b"hi", metadata=()))


def limited():
    codes = []
    for _ in range(3):
        try:
            channel.unary_unary("/test.Limited/Unary")(b"hi", timeout=10)
            codes.append("OK")
        except grpc.RpcError as e:
            codes.append(e.code().name)
    return codes


call("limited", limited)
print(json.dumps(out))
