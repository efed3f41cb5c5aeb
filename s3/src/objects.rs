//! Object operations the bundle layout is built from. Uploads carry their
//! sha256 (`x-amz-checksum-sha256`), so the server refuses bytes damaged on
//! the way; files over [`Transfer::multipart_threshold`] go in parts, read
//! from disk one part at a time, and an upload that fails is aborted so no
//! orphaned parts are left to pay for.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::connect::S3Client;
use crate::S3Error;

/// Upload tuning.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Files larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// Size of each part but the last (S3's minimum is 5 MiB).
    pub part_size: u64,
    /// Objects (or parts) in flight at once.
    pub concurrency: usize,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            multipart_threshold: 32 << 20,
            part_size: 16 << 20,
            concurrency: 8,
        }
    }
}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The full key.
    pub key: String,
    /// Its size.
    pub size: u64,
}

fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Checks what the server says it stored for a part against what was sent,
/// with the strongest evidence it gives: its sha256 of the part (S3 returns
/// the checksum it verified), else an ETag that is the part's MD5 (what S3
/// and most compatible servers give for unencrypted and SSE-S3 parts; a
/// server that verifies no checksum, like s3s-fs, still gives this). An
/// ETag of another form (SSE-KMS) proves nothing and is not compared.
fn check_stored_part(sent_md5: &str, sha256: &str, stored_sha256: Option<&str>, etag: Option<&str>) -> Result<(), String> {
    if let Some(stored) = stored_sha256 {
        return if stored == sha256 {
            Ok(())
        } else {
            Err(format!("damaged in transit: sent with sha256 {sha256}, the server stored sha256 {stored}"))
        };
    }
    let Some(etag) = etag.map(|e| e.trim_matches('"')) else { return Ok(()) };
    if etag.len() != 32 || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    if sent_md5.eq_ignore_ascii_case(etag) {
        Ok(())
    } else {
        Err(format!("damaged in transit: sent with MD5 {sent_md5}, the server stored ETag {etag}"))
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(bytes))
}

/// When a conditional put may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition<'a> {
    /// Always.
    None,
    /// Only over the object with this ETag (`If-Match`).
    IfMatch(&'a str),
    /// Only where no object is (`If-None-Match: *`).
    IfAbsent,
}

impl S3Client {
    /// Puts a small object from memory.
    pub async fn put_bytes(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), S3Error> {
        self.put_bytes_if(bucket, key, bytes, Precondition::None).await.map(|_| ())
    }

    /// Puts a small object from memory if `precondition` holds; `Ok(false)`
    /// when the server refused it for that (412).
    pub async fn put_bytes_if(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition<'_>,
    ) -> Result<bool, S3Error> {
        let checksum = sha256_b64(&bytes);
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .checksum_sha256(checksum)
            .body(ByteStream::from(bytes));
        let request = match precondition {
            Precondition::None => request,
            Precondition::IfMatch(etag) => request.if_match(etag),
            Precondition::IfAbsent => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
            Err(e) => Err(self.error(bucket, format!("PUT s3://{bucket}/{key}"), e)),
        }
    }

    /// Uploads a local file, in parts when it is large.
    pub async fn put_file(&self, bucket: &str, key: &str, path: &Path, transfer: &Transfer) -> Result<(), S3Error> {
        let size = std::fs::metadata(path).map_err(S3Error::io(path))?.len();
        if size <= transfer.multipart_threshold {
            let bytes = tokio::fs::read(path).await.map_err(S3Error::io(path))?;
            return self.put_bytes(bucket, key, bytes).await;
        }
        let what = format!("multipart upload of {} to s3://{bucket}/{key}", path.display());
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| self.error(bucket, what.clone(), e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = self.put_parts(bucket, key, &upload_id, path, size, transfer).await;
        match result {
            Ok(parts) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|e| self.error(bucket, what, e))?;
                Ok(())
            }
            Err(err) => {
                // Best effort: a dead server cannot be told; its lifecycle
                // rules (or the next prune) clean up.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(err)
            }
        }
    }

    async fn put_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        path: &Path,
        size: u64,
        transfer: &Transfer,
    ) -> Result<Vec<CompletedPart>, S3Error> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let part_size = transfer.part_size.max(1);
        let count = size.div_ceil(part_size);
        let mut parts: Vec<CompletedPart> = stream::iter(0..count)
            .map(|index| async move {
                let offset = index * part_size;
                let len = part_size.min(size - offset) as usize;
                let path_buf = path.to_path_buf();
                let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                    let mut file = std::fs::File::open(&path_buf)?;
                    file.seek(SeekFrom::Start(offset))?;
                    let mut buf = vec![0u8; len];
                    file.read_exact(&mut buf)?;
                    Ok(buf)
                })
                .await
                .expect("part reader does not panic")
                .map_err(S3Error::io(path))?;
                let checksum = sha256_b64(&bytes);
                let md5 = md5_hex(&bytes);
                let number = index as i32 + 1;
                let done = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .checksum_sha256(&checksum)
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| self.error(bucket, format!("upload of part {number} of s3://{bucket}/{key}"), e))?;
                check_stored_part(&md5, &checksum, done.checksum_sha256(), done.e_tag()).map_err(|reason| {
                    S3Error::Corrupt {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                        reason: format!("part {number}: {reason}; the upload is abandoned"),
                    }
                })?;
                Ok::<_, S3Error>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(done.e_tag().map(str::to_string))
                        .checksum_sha256(checksum)
                        .build(),
                )
            })
            .buffer_unordered(transfer.concurrency.max(1))
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    /// Gets a whole object into memory, or `None` when there is no such key.
    pub async fn get_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        match self.client.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(|e| S3Error::Request {
                    what: format!("GET s3://{bucket}/{key}"),
                    detail: e.to_string(),
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.error(bucket, format!("GET s3://{bucket}/{key}"), e)),
        }
    }

    /// Streams an object to `dest`, returning its size and lowercase hex sha256.
    pub async fn get_to_file(&self, bucket: &str, key: &str, dest: &Path) -> Result<(u64, String), S3Error> {
        let what = format!("GET s3://{bucket}/{key}");
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(bucket, what.clone(), e))?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(S3Error::io(parent))?;
        }
        let mut file = tokio::fs::File::create(dest).await.map_err(S3Error::io(dest))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(|e| S3Error::Request {
            what: what.clone(),
            detail: e.to_string(),
        })? {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(S3Error::io(dest))?;
        }
        file.sync_all().await.map_err(S3Error::io(dest))?;
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Every object under `prefix` (all pages).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        Ok(self.list_pages(bucket, prefix, None).await?.0)
    }

    /// The "directories" directly under `prefix` (which must end with `/`),
    /// as names without the prefix or trailing `/`.
    pub async fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut dirs: Vec<String> = self
            .list_pages(bucket, prefix, Some("/"))
            .await?
            .1
            .iter()
            .filter_map(|p| p.strip_prefix(prefix))
            .map(|name| name.trim_end_matches('/').to_string())
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    /// All pages of a listing: the objects, and the common prefixes when
    /// `delimiter` groups keys.
    async fn list_pages(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<(Vec<Listed>, Vec<String>), S3Error> {
        let (mut objects, mut prefixes) = (Vec::new(), Vec::new());
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(bucket, format!("LIST s3://{bucket}/{prefix}"), e))?;
            objects.extend(page.contents().iter().filter_map(|object| {
                Some(Listed {
                    key: object.key()?.to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                })
            }));
            prefixes.extend(page.common_prefixes().iter().filter_map(|c| c.prefix().map(str::to_string)));
        }
        Ok((objects, prefixes))
    }

    /// Deletes keys, 1,000 per request.
    pub async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<(), S3Error> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| S3Error::Request {
                    what: format!("DELETE in s3://{bucket}"),
                    detail: e.to_string(),
                })?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| S3Error::Request {
                    what: format!("DELETE in s3://{bucket}"),
                    detail: e.to_string(),
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.error(bucket, format!("DELETE {} keys in s3://{bucket}", chunk.len()), e))?;
            if let Some(first) = out.errors().first() {
                return Err(S3Error::Request {
                    what: format!("DELETE s3://{bucket}/{}", first.key().unwrap_or_default()),
                    detail: first.message().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_judged_by_the_servers_checksum_else_an_md5_etag() {
        let sent = md5_hex(b"part bytes");
        let sent = sent.as_str();
        let sha = sha256_b64(b"part bytes");
        let other = "\"4f2c1e2e5b26c4a9bd2a1b9b9b2d6d1e\""; // not this part's MD5
        assert!(check_stored_part(sent, &sha, Some(&sha), Some(other)).is_ok(), "the checksum wins over the ETag");
        assert!(check_stored_part(sent, &sha, Some("AAAA"), None).unwrap_err().contains("damaged in transit"));
        let real = format!("\"{sent}\"");
        assert!(check_stored_part(sent, &sha, None, Some(&real)).is_ok());
        assert!(check_stored_part(sent, &sha, None, Some(other)).unwrap_err().contains("MD5"));
        // An ETag that is no MD5 (SSE-KMS, a multipart suffix) proves nothing.
        assert!(check_stored_part(sent, &sha, None, Some("\"abc-3\"")).is_ok());
        assert!(check_stored_part(sent, &sha, None, None).is_ok());
    }
}
