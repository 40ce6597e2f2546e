#!/usr/bin/env bash
# Regenerate bench/etcdpb/rpc_pb2.py, rpc_pb2.pyi and rpc_pb2_grpc.py from bench/etcdpb/rpc.proto.
#
# grpcio-tools (the compiler) is needed only here, not to run the benchmark, so it goes into a
# temporary venv that is deleted afterwards; the project venv is left alone. Set
# GRPC_TOOLS_PYTHON to a python that already has grpcio-tools==1.85.4 to skip the install.
#
# protoc runs from the repository root with -I . so the proto's path is bench/etcdpb/rpc.proto
# and the generated rpc_pb2_grpc.py imports `from bench.etcdpb import rpc_pb2`: no sed needed.
# The runtime (grpcio==1.85.4, protobuf==7.36.2, the dev extra) must be at least as new as the
# generator: rpc_pb2_grpc.py refuses an older grpcio, rpc_pb2.py an older protobuf.
set -euo pipefail

GRPC_TOOLS_VERSION=1.85.4
cd "$(dirname "$0")/.."

py=${GRPC_TOOLS_PYTHON:-}
if [[ -z $py ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q --disable-pip-version-check "grpcio-tools==$GRPC_TOOLS_VERSION"
  py=$tmp/venv/bin/python
fi

"$py" -m grpc_tools.protoc -I . \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  bench/etcdpb/rpc.proto
echo "generated: $(ls bench/etcdpb/rpc_pb2*)"
