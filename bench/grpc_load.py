"""gRPC load for `bench/compare.sh --edge` (grpcio, asyncio; no generated code).

    grpc_load.py serve HOST:PORT          an echo server for /bench.Echo/Unary
    grpc_load.py call HOST:PORT SECONDS   unary calls with 50 in flight; prints calls per second
"""
import asyncio
import sys
import time

import grpc


async def serve(address):
    async def unary(request, context):
        return request

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(unary)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


async def call(address, seconds):
    async with grpc.aio.insecure_channel(address) as channel:
        unary = channel.unary_unary("/bench.Echo/Unary")
        await unary(b"warm-up", timeout=10)
        done = 0
        deadline = time.monotonic() + seconds

        async def worker():
            nonlocal done
            while time.monotonic() < deadline:
                await unary(b"hello", timeout=10)
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(50)))
        print(int(done / (time.monotonic() - started)))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2]))
    else:
        asyncio.run(call(sys.argv[2], float(sys.argv[3])))
