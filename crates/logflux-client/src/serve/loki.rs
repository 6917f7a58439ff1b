//! Loki's query endpoints over decrypted entries (stub until the query engine lands).
#![allow(clippy::unused_async)]

use axum::response::Response;

use super::Service;
use super::http::{LokiError, Req};

fn todo() -> Result<Response, LokiError> {
    Err(LokiError::bad("not yet"))
}

pub(crate) async fn query(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn query_range(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn labels(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn label_values(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn series(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn index_stats(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn index_volume(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn detected_labels(_s: &std::sync::Arc<Service>, _r: Req) -> Result<Response, LokiError> { todo() }
pub(crate) async fn tail() -> Result<Response, LokiError> { todo() }
