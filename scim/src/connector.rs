//! What connectors share, without any HTTP client of their own: a native call, the API that
//! sends it (each connector brings its own client), and a `Plan` that runs calls in order and
//! undoes the ones made, newest first, when a later one fails.

use axum::http::Method;
use serde_json::Value;

use crate::error::{Result, ScimError};
use crate::provider::BoxFuture;

/// One request to the native API: method, path below the API root, JSON body.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Call {
        Call {
            method,
            path: path.into(),
            body,
        }
    }
}

/// A native API client.
pub trait NativeApi: Send + Sync {
    fn send<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Result<Value>>;
}

/// Native calls run in order, each with how to undo it.
pub struct Plan<'a> {
    api: &'a dyn NativeApi,
    undo: Vec<Call>,
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("undo", &self.undo).finish()
    }
}

impl<'a> Plan<'a> {
    pub fn new(api: &'a dyn NativeApi) -> Plan<'a> {
        Plan {
            api,
            undo: Vec::new(),
        }
    }

    /// Sends `call`; once it succeeded, `undo` is what reverses it.
    pub async fn run(&mut self, call: Call, undo: Option<Call>) -> Result<Value> {
        let out = self.api.send(&call).await?;
        self.undo.extend(undo);
        Ok(out)
    }

    /// Records how to reverse a call whose answer was needed to know it (a created id).
    pub fn undo_with(&mut self, call: Call) {
        self.undo.push(call);
    }

    /// Undoes what ran, newest first. An undo that fails is logged: the client gets the
    /// original error, and its retry converges because every call is idempotent in effect.
    pub async fn roll_back(self) {
        for call in self.undo.into_iter().rev() {
            if let Err(e) = self.api.send(&call).await {
                tracing::warn!("undo of {} {} failed: {}", call.method, call.path, e.detail);
            }
        }
    }
}

/// 503 for a native side that is down or refusing for now: nothing was changed.
pub fn unavailable(detail: impl std::fmt::Display) -> ScimError {
    ScimError::new(
        503,
        None,
        format!("{detail}; nothing was changed, retry later"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails the call whose path is `fail`, records the rest.
    struct Recorder {
        fail: &'static str,
        sent: Mutex<Vec<String>>,
    }

    impl NativeApi for Recorder {
        fn send<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Result<Value>> {
            Box::pin(async move {
                self.sent
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", call.method, call.path));
                if call.path == self.fail {
                    Err(unavailable("down"))
                } else {
                    Ok(Value::Null)
                }
            })
        }
    }

    #[tokio::test]
    async fn a_failure_undoes_what_ran_newest_first() {
        let api = Recorder {
            fail: "/c",
            sent: Mutex::new(Vec::new()),
        };
        let mut plan = Plan::new(&api);
        let step = |p: &str| Call::new(Method::POST, p, None);
        let undo = |p: &str| Some(Call::new(Method::DELETE, p, None));
        plan.run(step("/a"), undo("/a")).await.unwrap();
        plan.run(step("/b"), undo("/b")).await.unwrap();
        assert_eq!(
            plan.run(step("/c"), undo("/c")).await.unwrap_err().status,
            503
        );
        plan.roll_back().await;
        assert_eq!(
            *api.sent.lock().unwrap(),
            ["POST /a", "POST /b", "POST /c", "DELETE /b", "DELETE /a"]
        );
    }
}
