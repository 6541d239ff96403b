//! Checks an operator runs before mounting (`s3cryptfs doctor`): whether the AWS chain finds
//! credentials for the settings. (Whether the bucket answers is [`super::S3Store::check_bucket`].)

use aws_sdk_s3::config::ProvideCredentials;

use super::settings::{S3Settings, sdk_config};
use crate::store::{StoreError, StoreResult};

/// Where the store's credentials came from, as far as it can be said without secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsFound {
    /// Not secret: S3 logs it and the settings show it.
    pub access_key_id: String,
    /// Temporary credentials (a session token) rather than a long-term key.
    pub temporary: bool,
}

impl S3Settings {
    /// Asks the credentials chain these settings use (explicit keys, environment, profiles,
    /// web identity, ECS/IMDS) for credentials, without sending a request to S3.
    pub async fn check_credentials(&self) -> StoreResult<CredentialsFound> {
        let shown = format!("s3://{}", self.bucket);
        let missing = |reason: String| StoreError::NoCredentials {
            store: shown.clone(),
            reason,
        };
        let (sdk, _) = sdk_config(self).await?;
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| missing("no credentials provider is configured".to_owned()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| missing(e.to_string()))?;
        Ok(CredentialsFound {
            access_key_id: credentials.access_key_id().to_owned(),
            temporary: credentials.session_token().is_some(),
        })
    }
}
