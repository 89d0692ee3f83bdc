"""A gRPC server with the standard health service, as agnhost's grpc-health-checking:
the server's overall status ("") is SERVING until FLAG exists, NOT_SERVING while it
does; service "db" is always SERVING; any other service is unknown (NOT_FOUND).

usage: grpc-health.py PORT FLAG
"""
import os
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

port, flag = sys.argv[1], sys.argv[2]
servicer = health.HealthServicer()
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port(f"127.0.0.1:{port}")
servicer.set("db", health_pb2.HealthCheckResponse.SERVING)
server.start()
print(f"serving gRPC health on {port}", flush=True)
while True:
    status = (health_pb2.HealthCheckResponse.NOT_SERVING if os.path.exists(flag)
              else health_pb2.HealthCheckResponse.SERVING)
    servicer.set("", status)
    time.sleep(0.1)
