//! The S3 client: the standard AWS credential chain (environment, profile,
//! SSO, web identity, instance metadata), an optional endpoint for
//! S3-compatible servers (garage, MinIO, s3s) with path-style addressing, and
//! the translation of SDK errors into messages that say what to fix.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::S3Error;

/// How to reach the server. Everything unset comes from the standard AWS
/// configuration (environment, `~/.aws/config`).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A non-AWS server, e.g. `http://127.0.0.1:9000`.
    pub endpoint_url: Option<String>,
    /// The region (default: the AWS configuration's, else `us-east-1`).
    pub region: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`; most
    /// self-hosted servers need it.
    pub path_style: bool,
    /// Fixed credentials instead of the chain (tests, embedding programs).
    pub static_credentials: Option<(String, String)>,
}

/// The region used when nothing configures one: S3-compatible servers accept
/// any, and AWS redirects bucket-region mismatches with a clear error.
const FALLBACK_REGION: &str = "us-east-1";

/// A configured client and the endpoint it talks to (for messages).
#[derive(Debug, Clone)]
pub struct S3Client {
    pub(crate) client: Client,
    pub(crate) endpoint: String,
}

impl S3Client {
    /// Builds the client. Makes no request.
    pub async fn new(options: &ConnectOptions) -> S3Client {
        // rustls over ring: the TLS stack the host already links for wasi-http.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        // No operation timeout (a 16 MiB part on a slow link takes long),
        // but a dead peer must not hang a publish or a poll forever.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .timeout_config(timeouts);
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let region = match (&options.region, &options.endpoint_url) {
            (Some(region), _) => Some(Region::new(region.clone())),
            // A self-hosted server is not on EC2: skip the chain's instance
            // metadata lookup (a timeout off AWS) and default to us-east-1.
            (None, Some(_)) => {
                RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                    .or_else(ProfileFileRegionProvider::new())
                    .or_else(Region::new(FALLBACK_REGION))
                    .region()
                    .await
            }
            (None, None) => None,
        };
        if let Some(region) = region {
            loader = loader.region(region);
        }
        if let Some((key, secret)) = &options.static_credentials {
            loader = loader.credentials_provider(Credentials::new(key, secret, None, None, "busca-static"));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(options.path_style)
            // Checksums are sent explicitly (sha256 per object and part) as
            // plain headers; the SDK's automatic ones use aws-chunked
            // trailers, which not every S3-compatible server implements.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if shared.region().is_none() {
            config = config.region(Region::new(FALLBACK_REGION));
        }
        let endpoint = options.endpoint_url.clone().unwrap_or_else(|| "AWS S3".to_string());
        S3Client {
            client: Client::from_conf(config.build()),
            endpoint,
        }
    }

    /// The underlying SDK client.
    pub fn sdk(&self) -> &Client {
        &self.client
    }

    /// Turns an SDK error of `what` (an operation and key) on `bucket` into
    /// an [`S3Error`] that says what to fix.
    pub(crate) fn error<E>(
        &self,
        bucket: &str,
        what: impl Into<String>,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let what = what.into();
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        let message = err.message().map(str::to_string);
        let detail = match (&code, &message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            _ => format!("{}", DisplayErrorContext(&err)),
        };
        let detail = match status {
            Some(s) => format!("HTTP {s}, {detail}"),
            None => detail,
        };
        match (&err, status, code.as_deref()) {
            (_, _, Some("NoSuchBucket")) => S3Error::NoSuchBucket {
                bucket: bucket.to_string(),
                endpoint: self.endpoint.clone(),
            },
            (_, Some(401 | 403), _) | (_, _, Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch")) => {
                S3Error::AccessDenied {
                    bucket: bucket.to_string(),
                    endpoint: self.endpoint.clone(),
                    detail,
                }
            }
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) if detail.contains("credentials") => {
                S3Error::NoCredentials {
                    endpoint: self.endpoint.clone(),
                    detail,
                }
            }
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => S3Error::Unreachable {
                endpoint: self.endpoint.clone(),
                what,
                detail,
            },
            _ => S3Error::Request { what, detail },
        }
    }
}
