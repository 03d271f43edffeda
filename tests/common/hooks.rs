//! A local HTTP server that takes alerts: every POST is recorded (path, idempotency key, JSON
//! body); scripted answers (a status, or hanging for a while) go to the next requests, 200
//! after them.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    routing::post,
    Router,
};

/// What the server answers a request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Waits this long, then answers 200 (a client with a shorter timeout sees nothing).
    Hang(Duration),
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub key: String,
    pub body: serde_json::Value,
    /// What it was answered (a hang is 200, late).
    pub status: u16,
    pub hung: bool,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Answer>,
    received: Vec<Received>,
}

/// The server.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl Hooks {
    pub async fn start() -> Hooks {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/*path", post(take))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hooks { inner, url }
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, answers: &[Answer]) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The events the webhook requests carried, in order: (journal seq, event, text).
    pub fn events(&self) -> Vec<(i64, String, String)> {
        self.received()
            .iter()
            .flat_map(|r| r.body["events"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                (
                    e["seq"].as_i64().unwrap_or(-1),
                    e["event"].as_str().unwrap_or_default().to_string(),
                    e["text"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let answer = inner.lock().unwrap().script.pop_front();
    let (status, hang) = match answer {
        Some(Answer::Status(s)) => (s, None),
        Some(Answer::Hang(d)) => (200, Some(d)),
        None => (200, None),
    };
    inner.lock().unwrap().received.push(Received {
        path: uri.path().to_string(),
        key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        status,
        hung: hang.is_some(),
    });
    if let Some(d) = hang {
        tokio::time::sleep(d).await;
    }
    StatusCode::from_u16(status).unwrap()
}
