//! What a configured provider serves: chat, or (with `dimensions`) embeddings. The same
//! OpenAI endpoint speaks both, so the gateway says which one each provider section is for;
//! a chain then skips, without a call, a provider asked for the other.

use std::sync::Arc;

use backstop::{
    BoxFuture, ChatRequest, ChunkStream, Completion, EmbeddingRequest, Embeddings, Provider,
    ProviderError, Unsupported,
};

/// `inner` restricted to one role.
pub(crate) struct Role {
    inner: Arc<dyn Provider>,
    embeddings: bool,
}

impl Role {
    /// Serves chat only.
    pub(crate) fn chat(inner: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(Role {
            inner,
            embeddings: false,
        })
    }

    /// Serves embeddings only.
    pub(crate) fn embeddings(inner: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(Role {
            inner,
            embeddings: true,
        })
    }

    fn refuse(what: &str) -> Unsupported {
        let mut u = Unsupported::new();
        u.add(what);
        u
    }
}

impl Provider for Role {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn model(&self) -> Option<&str> {
        self.inner.model()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        match self.check(request) {
            Ok(()) => self.inner.complete(request),
            Err(u) => Box::pin(std::future::ready(Err(u.to_error()))),
        }
    }

    fn stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        match self.check(request) {
            Ok(()) => self.inner.stream(request),
            Err(u) => Box::pin(std::future::ready(Err(u.to_error()))),
        }
    }

    fn check(&self, request: &ChatRequest) -> Result<(), Unsupported> {
        if self.embeddings {
            return Err(Role::refuse("chat (an embeddings provider)"));
        }
        self.inner.check(request)
    }

    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        match self.check_embeddings(request) {
            Ok(()) => self.inner.embed(request),
            Err(u) => Box::pin(std::future::ready(Err(u.to_error()))),
        }
    }

    fn check_embeddings(&self, request: &EmbeddingRequest) -> Result<(), Unsupported> {
        if !self.embeddings {
            return Err(Role::refuse("embeddings (a chat provider)"));
        }
        self.inner.check_embeddings(request)
    }
}
