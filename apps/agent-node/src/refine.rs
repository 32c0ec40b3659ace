//! Optional refinement of the ticket triage rules by a language model behind
//! an OpenAI-compatible chat completions endpoint (setting `reasoner_llm`).
//!
//! The rules always run first, and they stand whenever the model is not
//! configured, unreachable, slow, or answers anything but one of the same
//! priorities and categories: the model can move a ticket between the values
//! the rules know, never invent one, and what it changed is named in the
//! reasons a technician sees. Alert triage is not refined: its decisions are
//! acted on by automation, so they stay the rules' alone.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::reasoners::{CATEGORIES, PRIORITIES, Triage, TriageInput};

/// Where the model is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The API base, e.g. `https://api.openai.com/v1` or a local server's
    /// `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub api_key: Option<SecretString>,
    /// The whole call, connection included.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct Refiner {
    http: reqwest::Client,
    config: LlmConfig,
}

/// What the model is asked for, and all it may answer.
const INSTRUCTIONS: &str = "You triage IT support tickets for a managed service provider. \
Rules have already proposed a priority and a category; confirm or correct them. \
Priorities: p1 (security incident, or many people cannot work), p2 (one person cannot work), \
p3 (degraded, a workaround exists), p4 (question or request). \
Answer with one JSON object only: {\"priority\": \"p1\"|\"p2\"|\"p3\"|\"p4\", \
\"category\": one of the given categories, \"reason\": one short sentence for the technician}.";

#[derive(Debug, Deserialize)]
struct Suggestion {
    priority: String,
    category: String,
    #[serde(default)]
    reason: String,
}

impl Refiner {
    pub(crate) fn new(config: LlmConfig) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http =
            reqwest::Client::builder().timeout(config.timeout).redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { http, config })
    }

    /// The rules' triage, refined when the model answers within bounds; the
    /// rules' own, with the reason noted, otherwise.
    pub(crate) async fn refine(&self, input: &TriageInput, mut rules: Triage) -> Triage {
        match self.ask(input, &rules).await {
            Ok(suggestion) => {
                let model = &self.config.model;
                let (priority, category) = (suggestion.priority.as_str(), suggestion.category.as_str());
                let (Some(priority), Some(category)) =
                    (PRIORITIES.iter().find(|p| **p == priority), CATEGORIES.iter().find(|c| **c == category))
                else {
                    tracing::warn!(%model, priority, category, "the language model answered outside the allowed values");
                    rules.reasons.push(format!("{model} answered outside the allowed values; the rules stand"));
                    return rules;
                };
                let reason = suggestion.reason.trim().chars().take(300).collect::<String>();
                if (*priority, *category) == (rules.priority, rules.category) {
                    rules.reasons.push(format!("{model} agrees: {reason}"));
                } else {
                    rules.reasons.push(format!(
                        "{model} changed {}, {} to {category}, {priority}: {reason}",
                        rules.category, rules.priority
                    ));
                    (rules.priority, rules.category) = (priority, category);
                }
                rules.refined_by = Some(model.clone());
                rules
            }
            Err(error) => {
                tracing::warn!(model = %self.config.model, %error, "the language model did not refine the triage");
                rules.reasons.push(format!("the language model did not answer ({error}); the rules stand"));
                rules
            }
        }
    }

    async fn ask(&self, input: &TriageInput, rules: &Triage) -> Result<Suggestion, String> {
        let question = json!({
            "title": input.title,
            "description": input.description,
            "rules": {"priority": rules.priority, "category": rules.category, "reasons": rules.reasons},
            "categories": CATEGORIES,
        });
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": question.to_string()},
            ],
        });
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let mut request = self.http.post(url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} ms", self.config.timeout.as_millis())
            } else {
                e.to_string()
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let completion: Value = response.json().await.map_err(|e| format!("not a chat completion: {e}"))?;
        let content = completion["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| "a chat completion without message content".to_owned())?;
        // Some servers wrap JSON in a Markdown fence despite `json_object`.
        let content = content.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```");
        serde_json::from_str(content.trim()).map_err(|e| format!("not the JSON asked for: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::{Json, Router, http::HeaderMap, routing::post};

    use super::*;
    use crate::reasoners::triage;

    /// A stand-in chat completions server answering `content` (or `status`),
    /// after `delay`, and recording what it was asked.
    async fn model_server(status: u16, content: &str, delay: Duration) -> (String, Arc<Mutex<Vec<(Value, String)>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let content = content.to_owned();
        let app = Router::new().route(
            "/v1/chat/completions",
            post({
                let seen = Arc::clone(&seen);
                move |headers: HeaderMap, Json(body): Json<Value>| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    seen.lock().expect("lock").push((body, auth.to_owned()));
                    tokio::time::sleep(delay).await;
                    let answer = json!({"id": "chatcmpl-1", "object": "chat.completion",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}]});
                    (axum::http::StatusCode::from_u16(status).expect("status"), Json(answer))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, seen)
    }

    fn refiner(base_url: &str, timeout: Duration) -> Refiner {
        Refiner::new(LlmConfig {
            base_url: base_url.to_owned(),
            model: "triage-model".into(),
            api_key: Some(SecretString::from("sk-test".to_owned())),
            timeout,
        })
        .expect("client")
    }

    fn input(title: &str, description: &str) -> TriageInput {
        TriageInput { title: title.into(), description: description.into() }
    }

    #[tokio::test]
    async fn the_model_moves_a_ticket_between_known_values_and_says_so() {
        let (base, seen) = model_server(
            200,
            r#"{"priority": "p1", "category": "security", "reason": "A login prompt by email is phishing."}"#,
            Duration::ZERO,
        )
        .await;
        let ticket = input("Outlook asks me to log in again", "the link came in an email from 'IT'");
        let rules = triage(&ticket);
        assert_eq!((rules.priority, rules.category), ("p3", "email"));
        let refined = refiner(&base, Duration::from_secs(5)).refine(&ticket, rules).await;
        assert_eq!((refined.priority, refined.category), ("p1", "security"));
        assert_eq!(refined.refined_by.as_deref(), Some("triage-model"));
        assert!(refined.reasons[0].contains("email"), "the rules' reasons stay: {:?}", refined.reasons);
        assert!(refined.reasons.last().expect("reason").starts_with("triage-model changed email, p3 to security, p1"));
        let (request, auth) = seen.lock().expect("lock").pop().expect("asked");
        assert_eq!(auth, "Bearer sk-test");
        assert_eq!(request["model"], "triage-model");
        assert_eq!(request["response_format"]["type"], "json_object");
        let question: Value =
            serde_json::from_str(request["messages"][1]["content"].as_str().expect("content")).expect("json");
        assert_eq!(question["rules"]["priority"], "p3");
        assert_eq!(question["title"], "Outlook asks me to log in again");
    }

    #[tokio::test]
    async fn the_rules_stand_when_the_model_fails_or_strays() {
        let ticket = input("Printer offline", "");
        let rules = || triage(&ticket);
        let stands = |t: &Triage, why: &str| {
            assert_eq!((t.priority, t.category, t.refined_by.as_deref()), ("p3", "hardware", None), "{why}");
            assert!(t.reasons.last().expect("reason").ends_with("the rules stand"), "{why}: {:?}", t.reasons);
        };
        let (base, _) = model_server(200, r#"{"priority": "p0", "category": "hardware"}"#, Duration::ZERO).await;
        stands(&refiner(&base, Duration::from_secs(5)).refine(&ticket, rules()).await, "an unknown priority");
        let (base, _) = model_server(200, "Sure! It is probably hardware.", Duration::ZERO).await;
        stands(&refiner(&base, Duration::from_secs(5)).refine(&ticket, rules()).await, "prose instead of JSON");
        let (base, _) = model_server(429, "", Duration::ZERO).await;
        stands(&refiner(&base, Duration::from_secs(5)).refine(&ticket, rules()).await, "rate limited");
        let (base, _) = model_server(200, r#"{"priority": "p1", "category": "outage"}"#, Duration::from_secs(3)).await;
        let started = std::time::Instant::now();
        let slow = refiner(&base, Duration::from_millis(300)).refine(&ticket, rules()).await;
        stands(&slow, "too slow");
        assert!(started.elapsed() < Duration::from_secs(2), "the timeout bounds the wait");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gone = format!("http://{}/v1", closed.local_addr().expect("addr"));
        drop(closed);
        stands(&refiner(&gone, Duration::from_secs(5)).refine(&ticket, rules()).await, "unreachable");
    }

    #[tokio::test]
    async fn agreement_is_noted_and_a_fenced_answer_is_read() {
        let (base, _) = model_server(
            200,
            "```json\n{\"priority\": \"p3\", \"category\": \"hardware\", \"reason\": \"One printer.\"}\n```",
            Duration::ZERO,
        )
        .await;
        let ticket = input("Printer offline", "");
        let refined = refiner(&base, Duration::from_secs(5)).refine(&ticket, triage(&ticket)).await;
        assert_eq!((refined.priority, refined.category), ("p3", "hardware"));
        assert_eq!(refined.reasons.last().expect("reason"), "triage-model agrees: One printer.");
    }
}
