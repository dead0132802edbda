//! Publishing build notifications to an SNS-compatible endpoint (`--sns-endpoint`) with
//! `aws-sdk-sns`, and asking it whether a topic exists. Region and credentials come from the
//! standard AWS SDK chain (environment, profile); the endpoint from the flag.
//!
//! Depends on: domain (Notification), ops (TopicDirectory), worker (Sink).

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_sns::error::ProvideErrorMetadata;

use crate::domain::Notification;
use crate::ops::TopicDirectory;
use crate::worker::notify::Sink;

/// An SNS client bound to one endpoint.
#[derive(Debug, Clone)]
pub struct Sns {
    client: aws_sdk_sns::Client,
}

impl Sns {
    /// Builds a client for `endpoint` (for example `http://127.0.0.1:5000`).
    pub async fn connect(endpoint: &str) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(endpoint);
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
        let conf = loader.load().await;
        Self {
            client: aws_sdk_sns::Client::new(&conf),
        }
    }
}

#[async_trait]
impl Sink for Sns {
    async fn deliver(&self, n: &Notification) -> Result<(), String> {
        self.client
            .publish()
            .topic_arn(&n.topic_arn)
            .subject(&n.subject)
            .message(&n.message)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let e = e.into_service_error();
                format!(
                    "{}: {}",
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or_default()
                )
            })
    }
}

#[async_trait]
impl TopicDirectory for Sns {
    async fn topic_exists(&self, arn: &str) -> Result<bool, String> {
        match self
            .client
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = e.into_service_error();
                tracing::debug!(code = ?e.code(), message = ?e.message(), "GetTopicAttributes failed");
                if e.is_not_found_exception()
                    || e.code() == Some("NotFound")
                    || e.code() == Some("InvalidParameter")
                {
                    Ok(false)
                } else {
                    Err(format!(
                        "{}: {}",
                        e.code().unwrap_or("error"),
                        e.message().unwrap_or_default()
                    ))
                }
            }
        }
    }
}
