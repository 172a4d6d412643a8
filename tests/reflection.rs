//! Reflection shows each listener only what it serves: a peer county sees the exchange, health
//! and reflection and cannot even fetch the operator API's descriptors; an operator tool sees the
//! operator API and reflection.

mod common;

use common::*;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Sends one reflection request and returns its answer, or the status the stream ended with.
async fn reflect(channel: Channel, request: MessageRequest) -> Result<MessageResponse, tonic::Status> {
    let mut client = ServerReflectionClient::new(channel);
    let requests = futures::stream::iter([ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }]);
    let mut responses = client
        .server_reflection_info(requests)
        .await
        .expect("reflection answers")
        .into_inner();
    Ok(responses
        .message()
        .await?
        .expect("one message")
        .message_response
        .expect("a response body"))
}

async fn services(channel: Channel) -> Vec<String> {
    match reflect(channel, MessageRequest::ListServices(String::new()))
        .await
        .expect("services listed")
    {
        MessageResponse::ListServicesResponse(list) => {
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            names
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

async fn finds_symbol(channel: Channel, symbol: &str) -> bool {
    match reflect(channel, MessageRequest::FileContainingSymbol(symbol.into())).await {
        Ok(MessageResponse::FileDescriptorResponse(files)) => !files.file_descriptor_proto.is_empty(),
        Ok(MessageResponse::ErrorResponse(_)) => false,
        Err(status) if status.code() == tonic::Code::NotFound => false,
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn each_listener_describes_exactly_the_services_it_serves() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;

    let peer = || cluster.channel(DINGCHENG, XINHUA);
    assert_eq!(
        services(peer().await).await,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "hancha.exchange.v1.Exchange",
        ]
    );
    assert!(finds_symbol(peer().await, "hancha.exchange.v1.Exchange").await);
    assert!(
        !finds_symbol(peer().await, "hancha.operator.v1.Operator").await,
        "a peer cannot fetch the operator API's descriptors"
    );
    assert!(!finds_symbol(peer().await, "hancha.operator.v1.AskRequest").await);

    let operator = || async {
        Channel::from_shared(format!("http://{}", cluster.operator_address(XINHUA)))
            .unwrap()
            .connect()
            .await
            .expect("connect to the operator listener")
    };
    assert_eq!(
        services(operator().await).await,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "hancha.operator.v1.Operator"
        ]
    );
    assert!(!finds_symbol(operator().await, "hancha.exchange.v1.Exchange").await);
}
