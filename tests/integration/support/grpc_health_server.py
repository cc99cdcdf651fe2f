"""A real gRPC server for holdup's grpc:// tests: grpcio with the standard health service
(grpcio-health-checking), on a free loopback port.

    python3 grpc_health_server.py [--no-health] [--tls CERT KEY] [SERVICE=STATUS ...]

Prints "port N" once it listens. Then reads commands on stdin, one per line, and answers
"ok" to each once it is done:

    set SERVICE STATUS     (SERVICE "-" is the whole server; STATUS SERVING, NOT_SERVING...)

It stops when stdin closes.
"""

import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def service_name(name):
    return "" if name == "-" else name


def main(args):
    with_health = True
    tls = None
    statuses = []
    while args:
        arg = args.pop(0)
        if arg == "--no-health":
            with_health = False
        elif arg == "--tls":
            tls = (args.pop(0), args.pop(0))
        else:
            name, status = arg.split("=", 1)
            statuses.append((service_name(name), status))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    if with_health:
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name, status in statuses:
        servicer.set(name, health_pb2.HealthCheckResponse.ServingStatus.Value(status))

    if tls:
        with open(tls[0], "rb") as cert, open(tls[1], "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)

    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["set"]:
            servicer.set(
                service_name(words[1]),
                health_pb2.HealthCheckResponse.ServingStatus.Value(words[2]),
            )
        print("ok", flush=True)
    server.stop(0)


if __name__ == "__main__":
    main(sys.argv[1:])
