//! S3 calls lamb makes: content-addressed artifact uploads (skipped when the object is already
//! there), multipart for large files, the managed artifact bucket, and purging lamb's objects.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration};

use super::{AwsError, sdk_error};

/// Files above this go up in parts, several at a time (as the AWS CLI does, with its 8 MB
/// threshold): a lost connection costs one part, not the whole file.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
const PART_SIZE: u64 = 8 * 1024 * 1024;
/// Parts in flight at once.
const PART_UPLOADS: usize = 4;

#[derive(Clone)]
pub struct S3Api {
    pub client: aws_sdk_s3::Client,
    pub profile: Option<String>,
}

impl S3Api {
    fn err<E, R>(&self, op: &str, e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: super::RawAnswer,
    {
        sdk_error(op, self.profile.as_deref(), e)
    }

    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, AwsError> {
        match self.client.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let not_found = e.as_service_error().is_some_and(|s| s.is_not_found());
                if not_found {
                    return Ok(false);
                }
                let e = self.err("HeadObject", e);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }

    /// Uploads `path` to `bucket/key` unless an object is already there (keys are content
    /// addressed, so an existing object has the same bytes). Returns whether it uploaded.
    pub async fn upload_if_missing(&self, bucket: &str, key: &str, path: &Path) -> Result<bool, AwsError> {
        if self.exists(bucket, key).await? {
            return Ok(false);
        }
        self.upload(bucket, key, path).await?;
        Ok(true)
    }

    pub async fn upload(&self, bucket: &str, key: &str, path: &Path) -> Result<(), AwsError> {
        let size = tokio::fs::metadata(path).await.map_err(|e| AwsError::read_file(path, e))?.len();
        if size > MULTIPART_THRESHOLD {
            return self.upload_multipart(bucket, key, path, size).await;
        }
        let body = ByteStream::from_path(path).await.map_err(|e| AwsError::read_file(path, e))?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .customize()
            .config_override(aws_sdk_s3::config::Builder::default().timeout_config(super::upload_timeouts(size)))
            .send()
            .await
            .map_err(|e| self.err("PutObject", e))?;
        Ok(())
    }

    async fn upload_multipart(&self, bucket: &str, key: &str, path: &Path, size: u64) -> Result<(), AwsError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = async {
            let mut parts = Vec::new();
            let mut running = tokio::task::JoinSet::new();
            let mut offset = 0;
            let mut number = 1;
            while offset < size || !running.is_empty() {
                if offset < size && running.len() < PART_UPLOADS {
                    let len = PART_SIZE.min(size - offset);
                    let (api, bucket, key, upload_id, path) =
                        (self.clone(), bucket.to_string(), key.to_string(), upload_id.clone(), path.to_path_buf());
                    running.spawn(async move {
                        api.upload_part(&bucket, &key, &upload_id, &path, number, offset, len).await
                    });
                    offset += len;
                    number += 1;
                    continue;
                }
                match running.join_next().await {
                    Some(Ok(part)) => parts.push(part?),
                    Some(Err(e)) => return Err(AwsError::Failed(format!("a part upload of {key} stopped: {e}"))),
                    None => {}
                }
            }
            parts.sort_by_key(|p: &CompletedPart| p.part_number());
            self.client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| self.err("CompleteMultipartUpload", e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = self.client.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        path: &Path,
        number: i32,
        offset: u64,
        len: u64,
    ) -> Result<CompletedPart, AwsError> {
        let body = ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(aws_sdk_s3::primitives::Length::Exact(len))
            .build()
            .await
            .map_err(|e| AwsError::read_file(path, e))?;
        let out = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(body)
            .customize()
            .config_override(aws_sdk_s3::config::Builder::default().timeout_config(super::upload_timeouts(len)))
            .send()
            .await
            .map_err(|e| self.err("UploadPart", e))?;
        Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build())
    }

    /// Creates `bucket` in `region` unless it exists. Returns whether it created it.
    pub async fn ensure_bucket(&self, bucket: &str, region: &str) -> Result<bool, AwsError> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(false),
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_not_found());
                if !missing {
                    let e = self.err("HeadBucket", e);
                    if !e.is_not_found() {
                        return Err(e);
                    }
                }
            }
        }
        let mut req = self.client.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        req.send().await.map_err(|e| self.err("CreateBucket", e))?;
        Ok(true)
    }

    /// Deletes every object under `prefix`. Returns how many.
    pub async fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<usize, AwsError> {
        let mut deleted = 0;
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| self.err("ListObjectsV2", e))?;
            for obj in out.contents() {
                if let Some(key) = obj.key() {
                    self.client
                        .delete_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| self.err("DeleteObject", e))?;
                    deleted += 1;
                }
            }
            token = out.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return Ok(deleted);
            }
        }
    }
}
