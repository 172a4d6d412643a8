//! Generates the gRPC code from `proto/` with protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is needed. The file descriptor set is kept for server reflection.

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
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
