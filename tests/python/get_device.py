#!/usr/bin/env python3
"""A tiny Tether client in Python: DeviceService.GetDevice over mutual TLS.

It checks the README's Python recipe (tests/integration/python-client.test.ts compiles proto/tether
as the README says and runs this): only grpcio, protobuf and the generated modules are used.

    python3 tests/python/get_device.py --gen gen-py --address localhost:8443 \
        --ca certs/ca.crt --cert certs/admin.crt --key certs/admin.key devices/kitchen-led

Prints the device as protobuf JSON on stdout. Exits 1 with the gRPC status on stderr if the call
fails, 2 if the generated modules or the files cannot be read.
"""
import argparse
import sys


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="the device's resource name, devices/{device}")
    p.add_argument("--gen", required=True, help="folder the README's protoc command wrote to")
    p.add_argument("--address", default="localhost:8443", help="host:port of Tether's API")
    p.add_argument("--ca", default="certs/ca.crt")
    p.add_argument("--cert", default="certs/admin.crt")
    p.add_argument("--key", default="certs/admin.key")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds")
    a = p.parse_args()

    # The generated packages (tether.v1, tether.device.v1) come from --gen; grpc and google.protobuf
    # must still be the installed ones, which is why proto/grpc is not compiled (see the README).
    sys.path.insert(0, a.gen)
    try:
        import grpc
        from google.protobuf import json_format
        from tether.v1 import device_service_pb2, device_service_pb2_grpc
    except ImportError as err:
        print(f"get_device.py: cannot import the generated modules or grpcio: {err}", file=sys.stderr)
        return 2

    try:
        with open(a.ca, "rb") as ca, open(a.cert, "rb") as cert, open(a.key, "rb") as key:
            creds = grpc.ssl_channel_credentials(root_certificates=ca.read(), private_key=key.read(), certificate_chain=cert.read())
    except OSError as err:
        print(f"get_device.py: {err.filename}: {err.strerror}", file=sys.stderr)
        return 2

    with grpc.secure_channel(a.address, creds) as channel:
        stub = device_service_pb2_grpc.DeviceServiceStub(channel)
        try:
            device = stub.GetDevice(device_service_pb2.GetDeviceRequest(name=a.name), timeout=a.timeout)
        except grpc.RpcError as err:
            print(f"get_device.py: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
