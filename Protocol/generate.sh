#!/usr/bin/env bash
# Regenerates Sources/VoxWire/Generated/voxsync.pb.swift from Protocol/voxsync.proto.
#
# Uses Debian's protoc (apt-get install protobuf-compiler) with the protoc-gen-swift plugin
# built from the swift-protobuf version this package depends on, so generated code and
# runtime always match. The SwiftProtobuf build plugin is deliberately not used: it compiles
# protoc from C++ source on every clean build (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
swift build --product protoc-gen-swift >/dev/null
plugin="$(swift build --show-bin-path)/protoc-gen-swift"
protoc --plugin=protoc-gen-swift="$plugin" \
  --swift_opt=Visibility=Public \
  --swift_out=Sources/VoxWire/Generated \
  --proto_path=Protocol Protocol/voxsync.proto
echo "regenerated Sources/VoxWire/Generated/voxsync.pb.swift"
