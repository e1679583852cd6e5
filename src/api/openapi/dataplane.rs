//! The data plane's request and response shapes, for the document only: the providers crate
//! owns the wire types (and knows nothing of OpenAPI), and the answers are the upstream's,
//! passed through. These name the fields tollgate reads or sets; any other field passes
//! through, so every object allows more.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/chat/completions`: OpenAI's chat completions request.
#[derive(ToSchema)]
pub struct ChatCompletionRequest {
    /// A model name the gateway is configured with.
    pub model: String,
    /// OpenAI's messages: `{"role", "content", …}`.
    pub messages: Vec<Value>,
    /// Answer as server-sent events, ending with `data: [DONE]`.
    pub stream: Option<bool>,
    /// `{"include_usage": true}` adds a final chunk with the usage.
    pub stream_options: Option<Value>,
    /// Capped by `quota.max_output_tokens`.
    #[schema(minimum = 0)]
    pub max_tokens: Option<u64>,
    #[schema(minimum = 0)]
    pub max_completion_tokens: Option<u64>,
    /// Choices to generate; each reserves its share of the quota.
    #[schema(minimum = 1)]
    pub n: Option<u64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /v1/completions`: OpenAI's legacy completions request.
#[derive(ToSchema)]
pub struct CompletionRequest {
    pub model: String,
    /// A string or an array of strings (or of token arrays).
    pub prompt: Value,
    pub stream: Option<bool>,
    pub stream_options: Option<Value>,
    #[schema(minimum = 0)]
    pub max_tokens: Option<u64>,
    #[schema(minimum = 1)]
    pub n: Option<u64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /v1/embeddings`: OpenAI's embeddings request.
#[derive(ToSchema)]
pub struct EmbeddingsRequest {
    pub model: String,
    /// A string or an array of strings (or of token arrays).
    pub input: Value,
    /// `float` (default) or `base64` (little-endian f32).
    pub encoding_format: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /v1/responses`: OpenAI's Responses API request, stateless.
#[derive(ToSchema)]
pub struct ResponsesRequest {
    pub model: String,
    /// A string or an array of input items.
    pub input: Value,
    pub instructions: Option<String>,
    pub stream: Option<bool>,
    #[schema(minimum = 0)]
    pub max_output_tokens: Option<u64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /v1/messages` and `/v1/messages/count_tokens`: Anthropic's Messages request.
#[derive(ToSchema)]
pub struct MessagesRequest {
    pub model: String,
    /// Anthropic's messages: `{"role", "content"}`.
    pub messages: Vec<Value>,
    /// A string or an array of text blocks.
    pub system: Option<Value>,
    /// Required by `/v1/messages`; capped by `quota.max_output_tokens`.
    #[schema(minimum = 0)]
    pub max_tokens: Option<u64>,
    pub stream: Option<bool>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// An upstream's answer, passed through: OpenAI's (or Anthropic's) object for the route, with
/// `model` set to the name the client asked for.
#[derive(ToSchema)]
pub struct UpstreamAnswer {
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

/// `/v1/messages/count_tokens`' answer.
#[derive(ToSchema)]
pub struct TokenCount {
    pub input_tokens: u64,
}

/// OpenAI's model object.
#[derive(ToSchema)]
pub struct ModelObject {
    pub id: String,
    /// `model`.
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

/// OpenAI's list of models.
#[derive(ToSchema)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    pub data: Vec<ModelObject>,
}

/// Anthropic's error envelope: `{"type": "error", "error": {"type", "message"}}`.
#[derive(ToSchema)]
pub struct AnthropicError {
    /// `error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: AnthropicErrorBody,
}

#[derive(ToSchema)]
pub struct AnthropicErrorBody {
    /// `authentication_error`, `permission_error`, `not_found_error`, `rate_limit_error`,
    /// `invalid_request_error`, `api_error` or `overloaded_error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// One server-sent event of a streamed answer: `data` holds a JSON chunk of the dialect (or
/// `[DONE]` on the OpenAI-style routes), `event` names it where the dialect does.
#[derive(ToSchema)]
pub struct StreamEvent {
    pub data: String,
    pub event: Option<String>,
    pub id: Option<String>,
}
