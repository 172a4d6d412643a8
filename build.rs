//! Generates the gRPC code from `proto/` with protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is needed. The file descriptor set is kept for server reflection (and, with
//! its comments, for the HTTP API's OpenAPI document). The operator messages get serde impls
//! following the proto3 JSON mapping (pbjson).

use std::path::PathBuf;

use protox::prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/hancha/exchange/v1/exchange.proto",
        "proto/hancha/operator/v1/operator.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("hancha_descriptor.bin"), descriptors.encode_to_vec())?;
    // One set per listener, so that reflection shows each only what it serves.
    for (proto, name) in [
        (protos[0], "exchange_descriptor.bin"),
        (protos[1], "operator_descriptor.bin"),
    ] {
        let set = protox::compile([proto], ["proto"])?;
        std::fs::write(out_dir.join(name), set.encode_to_vec())?;
    }
    // The well-known types come from pbjson-types (the prost types with the proto3 JSON
    // mapping: Timestamps as RFC 3339 strings), so that the operator messages can be JSON too.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors.clone())?;
    // serde for the operator API's messages (proto3 JSON mapping), for its HTTP/JSON edge
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors.encode_to_vec())?
        .build(&[".hancha.operator.v1"])?;
    Ok(())
}
