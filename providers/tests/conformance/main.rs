//! Provider conformance: the same cases against every adapter, each through a mock upstream (the
//! test kit's, on 127.0.0.1 port 0) replaying that provider's documented wire format. One binary, so the crate links once.

// clippy's allow-unwrap-in-tests covers #[test] fns only, not the shared helpers of a test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod fixtures;
mod mock_provider;
mod proxy;

macro_rules! conformance_suite {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use tollgate_providers::ProviderKind;
            const KIND: ProviderKind = $kind;
            conformance_suite!(@cases
                chat_text, chat_stream_text, chat_tool_call, stream_tool_call,
                rate_limited_is_retryable_with_retry_after, server_error_is_retryable,
                client_error_is_final_and_hides_the_key, malformed_stream_fails_cleanly,
                truncated_stream_fails_cleanly, first_byte_timeout_is_retryable,
                idle_stream_times_out, dropping_the_stream_closes_the_upstream, embeddings,
                embeddings_base64
            );
        }
    )*};
    (@cases $($case:ident),*) => {$(
        #[tokio::test]
        async fn $case() {
            crate::cases::$case(KIND).await
        }
    )*};
}

conformance_suite! {
    openai => ProviderKind::OpenAi,
    azure => ProviderKind::Azure,
    anthropic => ProviderKind::Anthropic,
    gemini => ProviderKind::Gemini,
    ollama => ProviderKind::Ollama,
}
