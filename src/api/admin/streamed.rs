//! A response body that streams what a producer task sends. The first chunk is awaited before
//! the status is sent, so a database that is down is a 503, not a 200 with an empty file.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::ApiError;

pub(super) async fn body<E>(mut chunks: mpsc::Receiver<Result<Bytes, E>>) -> Result<Body, ApiError>
where
    E: std::error::Error + Send + Sync + 'static,
    ApiError: From<E>,
{
    let first = chunks.recv().await.transpose()?;
    let rest = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    let stream = futures_util::stream::iter(first.map(Ok)).chain(rest);
    Ok(Body::from_stream(stream))
}
